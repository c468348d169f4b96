/**
 * rpc_echo receiver: answers the `echo` RPC on `echo-queue`. The handler gets a reply function;
 * after replying it may go on working. Python postage's echo_send.py gets its answer from it
 * (replies go to reply_to, with a correlation id only when the request had one).
 */
import {
  Fingerprint,
  MessageProcessor,
  MessageResult,
  RpcHandler,
  type Eqk,
  type ReplyFunction,
} from 'postage-amqp';
import { EchoExchange } from './echo_shared';

class EchoReceiveProcessor extends MessageProcessor {
  static override eqk: Eqk = [[EchoExchange, [['echo-queue', 'echo-rk']]]];

  @RpcHandler('command', 'echo')
  msgEcho(content: { parameters: unknown }, reply: ReplyFunction): void {
    console.log(content.parameters);
    reply(new MessageResult('RPC message received'));
  }
}

async function main(): Promise<void> {
  const processor = new EchoReceiveProcessor({ fingerprint: new Fingerprint('echo_receive', 'controller') });
  const running = processor.run();
  await processor.ready;
  console.log('[receiver] answering echo calls on echo-queue (send quit to stop)');
  const result = await running;
  console.log(`[receiver] stopped (${result.reason})`);
}

main().catch((err: unknown) => {
  console.error('[receiver] failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
