/**
 * rpc_echo: the exchange both programs use, named as Python postage's demos name it, so that
 * each TypeScript program works with its Python counterpart (echo_send.py, echo_receive.py).
 */
import { Exchange } from 'postage-amqp';

export class EchoExchange extends Exchange {
  static override name = 'echo-exchange';
  static override exchange_type = 'direct';
  static override passive = false;
  static override durable = true;
  static override auto_delete = false;
}
