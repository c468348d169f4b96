/**
 * advanced_echo receiver: a shared round-robin queue and a private fanout queue, fingerprints,
 * and two handlers for one message (one of them gets the full body).
 * Start two or more, then run echo_send.ts: the single message reaches one receiver, the
 * fanout message reaches all of them. Python postage's echo_send.py and echo_receive.py mix
 * with these as they are (same exchange, queue and keys).
 */
import {
  Fingerprint,
  MessageHandler,
  MessageHandlerFullBody,
  MessageProcessor,
  type FingerprintDict,
} from 'postage-amqp';
import { EchoExchange, FANOUT_KEY, SHARED_KEY, SHARED_QUEUE, privateQueue } from './echo_shared';

class EchoReceiveProcessor extends MessageProcessor {
  constructor(fingerprint: FingerprintDict) {
    super({
      fingerprint,
      eqk: [
        [
          EchoExchange,
          [
            [SHARED_QUEUE, SHARED_KEY],
            // Gone with the receiver (postage's was left behind; the name is the same).
            [{ name: privateQueue(fingerprint), flags: { auto_delete: true } }, FANOUT_KEY],
          ],
        ],
      ],
    });
  }

  @MessageHandler('command', 'echo')
  msgEcho(content: { parameters: unknown }): void {
    console.log(content.parameters);
  }

  @MessageHandlerFullBody('command', 'echo')
  msgEchoFingerprint(body: { fingerprint: Record<string, string> }): void {
    console.log(`Message fingerprint: ${JSON.stringify(body.fingerprint)}`);
  }
}

async function main(): Promise<void> {
  const fingerprint = new Fingerprint('echo_receive', 'controller').asDict();
  const processor = new EchoReceiveProcessor(fingerprint);
  const running = processor.run();
  await processor.ready;
  console.log(
    `[receiver ${fingerprint.pid}] consuming ${processor.consumer.queueNames.join(' and ')} (send quit to stop)`,
  );
  const result = await running;
  console.log(`[receiver ${fingerprint.pid}] stopped (${result.reason})`);
}

main().catch((err: unknown) => {
  console.error('[receiver] failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
