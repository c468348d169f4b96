/** rpc_echo: the exchange both programs use. */
import { Exchange } from 'postage-amqp';

export class EchoExchange extends Exchange {
  static override name = 'rpc-echo-exchange';
  static override exchange_type = 'direct';
  static override durable = true;
}
