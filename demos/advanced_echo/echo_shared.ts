/** advanced_echo: the exchange both programs use. */
import { Exchange } from 'postage-amqp';

export class EchoExchange extends Exchange {
  static override name = 'advanced-echo-exchange';
  static override exchange_type = 'direct';
  static override durable = true;
}

/** The shared queue: every receiver consumes it, so messages are spread round-robin. */
export const SHARED_QUEUE = 'advanced-echo-queue';
/** Routing key of the shared queue. */
export const SHARED_KEY = 'echo-rk';
/** Routing key of every receiver's private queue: each receiver gets a copy (fanout). */
export const FANOUT_KEY = 'echo-fanout-rk';
