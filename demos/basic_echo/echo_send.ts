/**
 * basic_echo sender: sends one `echo` command (or `quit` with --quit) to `echo-exchange` with
 * the key `echo-rk`. Python postage's echo_receive.py gets it as it is.
 * Run: npx tsx demos/basic_echo/echo_send.ts [--quit]
 */
import { GenericProducer } from 'postage-amqp';
import { EchoExchange } from './echo_shared';

class EchoProducer extends GenericProducer<{ echo: string; quit: void }> {
  static override eks = [[EchoExchange, 'echo-rk']] as const;
}

async function main(): Promise<void> {
  const producer = EchoProducer.create();
  try {
    if (process.argv.includes('--quit')) {
      await producer.message_quit();
      console.log('[sender] quit sent');
    } else {
      // Resolves once RabbitMQ has confirmed the message (rejects if it routes nowhere).
      await producer.message_echo('A test message');
      console.log('[sender] echo sent');
    }
  } finally {
    await producer.close();
  }
}

main().catch((err: unknown) => {
  console.error('[sender] failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
