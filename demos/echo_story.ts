/**
 * The echo story in one process, narrated: basic echo, fingerprints, round-robin and fanout,
 * RPC with a reply, an RPC that times out and retries, a bad message dead-lettered, quit.
 *
 * `npm run demo` runs it on the in-process broker (memory://), with no RabbitMQ at all;
 * `npm run demo:rabbitmq` against a throwaway RabbitMQ; `POSTAGE_URL=amqp://... npm run demo`
 * against yours. It exits 0 only if every step did what it says.
 */
import {
  Exchange,
  Fingerprint,
  GenericConsumer,
  GenericProducer,
  MessageHandler,
  MessageHandlerFullBody,
  MessageProcessor,
  MessageResult,
  RpcHandler,
  runAll,
  type Eqk,
  type ExchangeDefinition,
  type ReplyFunction,
} from 'postage-amqp';

// POSTAGE_URL wins; `npm run demo:rabbitmq` sets POSTAGE_TEST_URL (a throwaway RabbitMQ);
// otherwise the in-process broker.
const url = process.env['POSTAGE_URL'] || process.env['POSTAGE_TEST_URL'] || 'memory://';
const connection = { url };
const run = `${process.pid}`;

class StoryExchange extends Exchange {
  static override name = `story-exchange-${run}`;
  static override durable = false;
  static override auto_delete = true;
}

/** Where rejected messages go: a dead-letter exchange and its queue. */
const deadLetters: ExchangeDefinition = {
  name: `story-dlx-${run}`,
  exchange_type: 'fanout',
  passive: false,
  durable: false,
  auto_delete: true,
};

function say(line: string): void {
  console.log(line);
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`the story went wrong: ${what}`);
}

async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A receiver: a shared round-robin queue, a private fanout queue, echo handlers and an RPC. */
class Receiver extends MessageProcessor {
  readonly seen: string[] = [];

  constructor(readonly label: string) {
    super({
      ...connection,
      fingerprint: new Fingerprint(`receiver-${label}`, 'controller'),
      eqk: [
        [
          StoryExchange,
          [
            [
              {
                name: `story-shared-${run}`,
                flags: { auto_delete: true, arguments: { 'x-dead-letter-exchange': deadLetters.name } },
              },
              'echo-rk',
            ],
            [{ name: `story-private-${run}-${label}`, flags: { auto_delete: true } }, 'echo-fanout-rk'],
          ],
        ],
      ] satisfies Eqk,
    });
  }

  @MessageHandler('command', 'echo')
  msgEcho(content: { parameters: unknown }): void {
    this.seen.push(String(content.parameters));
    say(`    receiver ${this.label} got: ${String(content.parameters)}`);
  }

  @MessageHandlerFullBody('command', 'echo')
  msgEchoFingerprint(body: { fingerprint: Record<string, string> }): void {
    const fp = body.fingerprint;
    say(
      `    receiver ${this.label} sees it came from ${fp['name']} (${fp['type']}), pid ${fp['pid']} on ${fp['host']}`,
    );
  }

  @RpcHandler('command', 'echo')
  rpcEcho(content: { parameters: unknown }, reply: ReplyFunction): void {
    reply(new MessageResult(`receiver ${this.label} echoes: ${String(content.parameters)}`));
  }

  @RpcHandler('command', 'slow')
  async rpcSlow(content: { parameters: number }): Promise<string> {
    // Slower than the caller's timeout the first time: the caller retries.
    await new Promise((r) => setTimeout(r, content.parameters));
    return 'slow but done';
  }
}

class StoryProducer extends GenericProducer<{ echo: string; slow: number; mute: void; quit: void }> {
  static override eks = [[StoryExchange, 'echo-rk']] as const;
}

async function main(): Promise<void> {
  say(
    `postage echo story on ${url.startsWith('memory:') ? 'the in-process broker (memory://)' : 'RabbitMQ'}`,
  );
  const a = new Receiver('A');
  const b = new Receiver('B');
  const running = runAll([a, b]);
  // Their queues are declared, bound and consumed: what is published from now on reaches them.
  await running.ready;
  const producer = StoryProducer.create({
    ...connection,
    fingerprint: new Fingerprint('echo_send', 'application'),
  });
  // Reads the dead-letter queue with a plain consumer: it sees the broker's x-death header.
  const dead: Array<{ reason: unknown; body: string }> = [];
  const deadLetterQueue = `story-dlq-${run}`;
  const deadReader = new GenericConsumer({
    ...connection,
    eqk: [[deadLetters, [[{ name: deadLetterQueue, flags: { auto_delete: true } }, '']]]],
  });
  await deadReader.startConsuming((message) => {
    if (message === null) return;
    const death = (message.properties.headers?.['x-death'] as Array<{ reason: string }> | undefined)?.[0];
    dead.push({ reason: death?.reason, body: message.content.toString() });
    deadReader.ack(message);
  });
  try {
    say('\n1. basic echo: a command named echo, its argument as parameters');
    await producer.message_echo('A test message');
    await until(() => a.seen.length + b.seen.length === 1, 'the echo');

    say("\n2. fingerprints: the full-body handler above printed the sender's fingerprint");

    say('\n3. round-robin and fanout: four messages to the shared queue, one to the fanout key');
    a.seen.length = 0;
    b.seen.length = 0;
    for (let i = 1; i <= 4; i++) await producer.message_echo(`round-robin ${i}`);
    await until(() => a.seen.length + b.seen.length === 4, 'the round-robin messages');
    say(`    shared queue: A handled ${a.seen.length}, B handled ${b.seen.length}`);
    await producer.message_echo('to everyone', { _key: 'echo-fanout-rk' });
    await until(() => a.seen.includes('to everyone') && b.seen.includes('to everyone'), 'the fanout message');
    say('    the fanout message reached both receivers');

    say('\n4. RPC with a reply');
    const reply = await producer.rpc_echo('ping');
    check(reply.ok, 'the echo call failed');
    say(`    reply: ${String(reply.value)}`);

    say('\n5. an RPC that times out and retries: 0.3 s per attempt, the server takes 0.5 s');
    const started = Date.now();
    const slow = await producer.rpc_slow(500, { _timeout: 0.3, _max_retry: 2 });
    check(slow.ok, 'the slow call failed');
    say(
      `    answered "${String(slow.value)}" after ${Date.now() - started} ms: the late reply to the first attempt counts`,
    );
    const unanswered = await producer.rpc_mute({ _timeout: 0.2, _max_retry: 1 });
    say(`    a call with no handler is answered at once: ${unanswered.message}`);
    const lost = await producer.rpc_echo('anyone?', { _key: 'nobody-listens' });
    say(`    a call that routes nowhere returns at once: ${String(lost.value)}`);

    say('\n6. a bad message is dead-lettered: not lost, not redelivered forever');
    await producer.forward({ not: 'a postage message' });
    await until(() => dead.length === 1, 'the dead letter');
    say(
      `    the receivers rejected ${dead[0]?.body}; it reached the dead-letter queue (x-death reason: ${String(dead[0]?.reason)})`,
    );

    say('\n7. quit: every receiver gets it through its private fanout queue');
    await producer.message_quit({ _key: 'echo-fanout-rk' });
    const results = await running;
    say(`    receivers stopped: ${results.map((r) => r.reason).join(', ')}`);
  } finally {
    await producer.close();
    await deadReader.close();
  }
  say('\nthe end');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
