/**
 * Runs README's quick start in one process on the in-process broker (POSTAGE_URL=memory://):
 * scripts/check-package.ts compiles it beside the README's examples, in a fresh project that
 * installed the packed tarball. The receiver (echo_receive.ts) runs until it gets `quit`; once
 * it consumes its queue, the sender (echo_send.ts) runs, then this sends `quit`. What the
 * receiver prints is on stdout, for the check to compare.
 */
import { GenericProducer, MemoryBroker, MessageCommand, type ExchangeDefinition } from 'postage-amqp';

// The quick start's own files, found beside this one once compiled (not resolved here).
const load = (name: string): Promise<unknown> => import(`./${name}.js`);

async function consuming(queue: string, deadline: number): Promise<void> {
  const broker = MemoryBroker.named('default');
  while ((broker.inspect().find((q) => q.name === queue)?.consumers ?? 0) === 0) {
    if (Date.now() > deadline) throw new Error(`the receiver never consumed '${queue}'`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function main(): Promise<void> {
  const { EchoExchange } = (await load('echo_shared')) as { EchoExchange: ExchangeDefinition };
  const receiver = load('echo_receive');
  await consuming('echo-queue', Date.now() + 20_000);
  await load('echo_send');

  class QuitProducer extends GenericProducer {
    static override eks = [[EchoExchange, 'echo-rk']] as const;
  }
  const producer = QuitProducer.create();
  await producer.send(new MessageCommand('quit'));
  await producer.close();
  await receiver;
}

main().then(
  () => process.stderr.write('quick start: the receiver quit\n'),
  (error: unknown) => {
    process.stderr.write(
      `quick start failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
