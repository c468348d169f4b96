/**
 * basic_echo receiver: waits for `echo` commands on `echo-queue` and prints their parameters,
 * until it gets the `quit` command. Python postage's echo_send.py reaches it as it is.
 * Run: npx tsx demos/basic_echo/echo_receive.ts (POSTAGE_URL selects the broker).
 */
import { MessageHandler, MessageProcessor, type Eqk } from 'postage-amqp';
import { EchoExchange } from './echo_shared';

class EchoReceiveProcessor extends MessageProcessor {
  static override eqk: Eqk = [[EchoExchange, [['echo-queue', 'echo-rk']]]];

  @MessageHandler('command', 'echo')
  msgEcho(content: { parameters: unknown }): void {
    console.log(content.parameters);
  }
}

async function main(): Promise<void> {
  const processor = new EchoReceiveProcessor();
  const running = processor.run();
  // The queue is declared, bound and consumed: what is sent from now on arrives.
  await processor.ready;
  console.log('[receiver] waiting for echo commands on echo-queue (send quit to stop)');
  const result = await running;
  console.log(`[receiver] stopped (${result.reason})`);
}

main().catch((err: unknown) => {
  console.error('[receiver] failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
