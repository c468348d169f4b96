/**
 * Processing features, narrated, on the in-process broker: handler outcomes, error handlers,
 * matchers, hooks, a translator for a foreign producer, a poison message, and runOnce.
 *
 * `npm run demo:features`. It drives the processors with the test client, so it runs on
 * memory:// only (POSTAGE_URL is used when it is a memory:// URL). It exits 0 only if every
 * step did what it says.
 */
import {
  DeleteMessage,
  MessageCommand,
  MessageHandler,
  MessageMatcher,
  MessageProcessor,
  Outcome,
  RpcCommand,
  RpcHandler,
  RpcMatcher,
  TestClient,
  type Eqk,
  type ExchangeDefinition,
  type HandlerContext,
} from 'postage-amqp';

const given = process.env['POSTAGE_URL'] ?? '';
const url = given.startsWith('memory://') ? given : `memory://features-${process.pid}`;

const shop: ExchangeDefinition = {
  name: 'shop',
  exchange_type: 'direct',
  passive: false,
  durable: false,
  auto_delete: false,
};

function say(line: string): void {
  console.log(line);
}

function check(condition: boolean, what: string): void {
  if (!condition) {
    console.error(`FAILED: ${what}`);
    process.exitCode = 1;
  }
}

let flakyAttempts = 0;

/** A payment service: its handlers decide the outcome of their messages. */
class Payments extends MessageProcessor {
  static override eqk: Eqk = [
    [
      shop,
      [
        ['payments', 'pay'],
        ['legacy-orders', 'legacy'],
      ],
    ],
  ];
  audited: string[] = [];

  @MessageHandler('command', 'charge')
  charge(content: { parameters: { card: string } }) {
    switch (content.parameters.card) {
      case 'declined':
        return Outcome.deadLetter('CARD_DECLINED');
      case 'flaky':
        // The bank times out once: try again in 50 ms (counted against maxDeliveries).
        return ++flakyAttempts < 2 ? Outcome.requeue({ delayMs: 50 }) : Outcome.ack();
      case 'duplicate':
        throw new DeleteMessage('already charged');
      case 'crash':
        throw new Error('the card parser crashed');
      case 'poison':
        throw new Error('this one always fails');
    }
    return Outcome.ack();
  }

  @MessageMatcher((body) => body.type === 'event')
  audit(_content: unknown, context: HandlerContext) {
    this.audited.push(String(context.body.name));
  }

  @RpcHandler('command', 'refund') refund() {
    return 'refunded';
  }

  @RpcMatcher((body) => body.name === 'refund' || body.name === 'cancel') cancel() {
    return 'cancelled';
  }
}

async function main(): Promise<void> {
  say(`processing features on the in-process broker (${url})`);
  const timings: string[] = [];
  const payments = new Payments({
    url,
    deadLetter: true,
    maxDeliveries: 3,
    // Only the poison card is retried on failure; other failures go to the default (dead-letter).
    onError: (_error, message) =>
      (message.content as { parameters?: { card?: string } }).parameters?.card === 'poison'
        ? Outcome.requeue({ delayMs: 10 })
        : undefined,
    hooks: {
      beforeHandling: (context) => {
        context.state['t0'] = performance.now();
      },
      afterHandling: (context, { outcome }) => {
        const ms = performance.now() - (context.state['t0'] as number);
        timings.push(`${String(context.body.name)} -> ${outcome.kind} in ${ms.toFixed(1)} ms`);
      },
    },
    translators: {
      // A legacy shop publishes plain JSON {"card": ..., "amount": ...} on this queue.
      'legacy-orders': (body) => new MessageCommand('charge', body),
    },
  });
  const client = await TestClient.for(payments);
  const charge = (card: string) => new MessageCommand('charge', { card });

  say('1. outcomes: the handler decides');
  const ok = await client.send(charge('visa'));
  say(`   a good card: ${ok.outcome}`);
  const declined = await client.send(charge('declined'));
  say(`   a declined card: ${declined.outcome} (${client.deadLettered.at(-1)?.postageReason})`);
  const flaky = await client.send(charge('flaky'));
  await waitUntil(() => flakyAttempts === 2 && client.acked.length === 2);
  say(`   a flaky bank: ${flaky.outcome} first, acked on the second delivery`);
  const duplicate = await client.send(charge('duplicate'));
  say(`   a duplicate: DeleteMessage -> ${duplicate.outcome}, dropped`);
  check(ok.outcome === 'ack' && declined.outcome === 'deadLetter' && flaky.outcome === 'requeue', 'outcomes');
  check(duplicate.outcome === 'ack', 'DeleteMessage acks');

  say('2. a handler error: logged and dead-lettered with the error; the next message is fine');
  const crash = await client.send(charge('crash'));
  const dead = client.deadLettered.at(-1);
  say(`   ${crash.outcome}: ${dead?.postageReason}, "${dead?.error}"`);
  check(crash.outcome === 'deadLetter' && dead?.postageReason === 'HANDLER_FAILED', 'default error outcome');
  check((await client.send(charge('visa'))).outcome === 'ack', 'the channel stays open');

  say('3. a poison message: requeued with a delay, dead-lettered after 3 deliveries');
  await client.send(charge('poison'));
  await waitUntil(() => client.deadLettered.some((d) => d.postageReason === 'DELIVERY_LIMIT'));
  const poison = client.deadLettered.find((d) => d.postageReason === 'DELIVERY_LIMIT');
  say(
    `   ${poison?.postageReason} after ${String(poison?.headers['x-postage-deliveries'])} deliveries: "${poison?.error}"`,
  );
  check(poison?.headers['x-postage-deliveries'] === 3, 'poison bounded');

  say('4. matchers: a predicate handler sees every event; an RPC needs exactly one handler');
  const event = (name: string) => ({ type: 'event', name, category: 'message', content: {} });
  await client.send(event('paid'));
  await client.send(event('shipped'));
  say(`   audited: ${payments.audited.join(', ')}`);
  check(payments.audited.join() === 'paid,shipped', 'matcher');
  const cancel = await client.rpc(new RpcCommand('cancel'));
  const refund = await client.rpc(new RpcCommand('refund'));
  say(`   rpc cancel: ${String(cancel.value)}; rpc refund: "${refund.message}"`);
  check(cancel.value === 'cancelled' && !refund.ok, 'rpc matcher rules');

  say('5. a translator: plain JSON from a legacy shop becomes a postage command');
  const legacy = await client.send({ card: 'visa', amount: 12 }, { queue: 'legacy-orders' });
  say(`   legacy order: ${legacy.outcome}`);
  check(legacy.outcome === 'ack', 'translator');

  say('6. hooks: before/after each message, sharing per-message state');
  for (const line of timings.slice(0, 3)) say(`   ${line}`);
  check(timings.length > 5, 'hooks ran');
  await client.close();

  say('7. runOnce: handle what is queued now, then return the counts');
  // A first run declares the queue; then four orders wait in it while nothing consumes.
  const filler = await TestClient.for(
    new Payments({ url, eqk: [[shop, [['batch', 'batch']]]], deadLetter: true }),
  );
  await filler.close();
  const batch = new Payments({ url, eqk: [[shop, [['batch', 'batch']]]], deadLetter: true });
  const raw = await TestClient.for(batch, { start: false });
  for (const card of ['visa', 'visa', 'declined', 'duplicate'])
    await raw.publish(charge(card), { queue: 'batch' });
  const counts = await batch.runOnce({ idleMs: 50 });
  say(`   handled ${counts.received}: acked ${counts.acked}, dead-lettered ${counts.deadLettered}`);
  check(counts.received === 4 && counts.acked === 3 && counts.deadLettered === 1, 'runOnce counts');
  await raw.close();
  say('the end');
}

async function waitUntil(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((r) => setTimeout(r, 5));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
