/**
 * basic_echo: the exchange both programs use.
 * (Each demo has its own exchange and queue names, so the three can share one broker.)
 */
import { Exchange } from 'postage-amqp';

export class EchoExchange extends Exchange {
  static override name = 'basic-echo-exchange';
  static override exchange_type = 'direct';
  static override passive = false;
  static override durable = true;
  static override auto_delete = false;
}
