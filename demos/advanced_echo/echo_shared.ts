/**
 * advanced_echo: the exchange and names both programs use, as Python postage's demos name them
 * (its echo_send.py and echo_receive.py work with these programs as they are).
 */
import { Exchange } from 'postage-amqp';

export class EchoExchange extends Exchange {
  static override name = 'echo-exchange';
  static override exchange_type = 'direct';
  static override passive = false;
  static override durable = true;
  static override auto_delete = false;
}

/** The shared queue: every receiver consumes it, so messages are spread round-robin. */
export const SHARED_QUEUE = 'echo-queue';
/** Routing key of the shared queue. */
export const SHARED_KEY = 'echo-rk';
/** Routing key of every receiver's private queue: each receiver gets a copy (fanout). */
export const FANOUT_KEY = 'echo-fanout-rk';

/** A receiver's private queue, unique on the cluster: `echo-queue-<pid><host>`, as postage names it. */
export function privateQueue(fingerprint: { pid: string; host: string }): string {
  return `${SHARED_QUEUE}-${fingerprint.pid}${fingerprint.host}`;
}
