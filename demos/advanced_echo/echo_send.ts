/**
 * advanced_echo sender: one message to the shared queue (one receiver gets it) and one fanout
 * message (every receiver gets it), with the sender's fingerprint. --quit stops every receiver.
 */
import { Fingerprint, GenericProducer } from 'postage-amqp';
import { EchoExchange, FANOUT_KEY, SHARED_KEY } from './echo_shared';

class EchoProducer extends GenericProducer<{ echo: string; quit: void }> {
  static override eks = [[EchoExchange, SHARED_KEY]] as const;
}

async function main(): Promise<void> {
  const producer = EchoProducer.create({ fingerprint: new Fingerprint('echo_send', 'application') });
  try {
    if (process.argv.includes('--quit')) {
      // Through the fanout key every receiver gets its own quit.
      await producer.message_quit({ _key: FANOUT_KEY });
      console.log('[sender] quit sent to every receiver');
      return;
    }
    await producer.message_echo('A single test message');
    await producer.message_echo('A fanout test message', { _key: FANOUT_KEY });
    console.log('[sender] sent one round-robin and one fanout message');
  } finally {
    await producer.close();
  }
}

main().catch((err: unknown) => {
  console.error('[sender] failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
