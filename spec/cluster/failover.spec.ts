/**
 * `npm run test:cluster`: a 3-node RabbitMQ cluster on this machine. The node that leads a
 * quorum queue, and holds the producer's connection, is killed with SIGKILL under load; the
 * producer fails over to another node of its URL list, republishes what was not confirmed, and
 * no confirmed message is lost. Counted the Jepsen way. Publishes made while the queue elects a
 * new leader are nacked by RabbitMQ: they settle as NACKED (the caller decides to retry).
 */
import { connect } from 'amqplib';

import { GenericProducer, MessageHandler, MessageProcessor, type ExchangeDefinition } from '../../lib';
import { RabbitNode } from '../../scripts/rabbit-node';

jest.setTimeout(240_000);

const exchange: ExchangeDefinition = {
  name: 'cluster-ex',
  exchange_type: 'direct',
  passive: false,
  durable: true,
  auto_delete: false,
};
const queueFlags = {
  durable: true,
  exclusive: false,
  auto_delete: false,
  arguments: { 'x-queue-type': 'quorum' },
};

class Counter extends MessageProcessor {
  readonly received = new Map<number, number>();
  @MessageHandler('command', 'n') n(content: { parameters: number }) {
    this.received.set(content.parameters, (this.received.get(content.parameters) ?? 0) + 1);
  }
}

class Numbers extends GenericProducer<{ n: number }> {
  static override eks = [[exchange, 'n']] as const;
}

const log = (line: string): void => void process.stdout.write(`[cluster] ${line}\n`);

/** cluster-q as a node sees it: leader, members, online members. */
async function queueInfo(node: RabbitNode): Promise<string> {
  return (
    await node
      .ctl('list_queues', 'name', 'leader', 'members', 'online', '--formatter', 'json')
      .catch((e: Error) => e.message)
  ).replace(/\s+/g, ' ');
}

describe('cluster (3 RabbitMQ nodes)', () => {
  const nodes: RabbitNode[] = [];

  beforeAll(async () => {
    await RabbitNode.ensureInstalled(log);
    const names = [1, 2, 3].map((i) => `postage-c${process.pid}-${i}@localhost`);
    const discovery = [
      'cluster_formation.peer_discovery_backend = classic_config',
      ...names.map((name, i) => `cluster_formation.classic_config.nodes.${i + 1} = ${name}`),
    ];
    const t0 = Date.now();
    nodes.push(
      ...(await Promise.all(names.map((name) => RabbitNode.start({ name, extraConfig: discovery, log })))),
    );
    for (let i = 0; ; i++) {
      const status = JSON.parse(await nodes[0]!.ctl('cluster_status', '--formatter', 'json')) as {
        running_nodes: string[];
      };
      if (status.running_nodes.length === 3) break;
      if (i > 120) throw new Error(`cluster did not form: ${JSON.stringify(status)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    log(`cluster of 3 ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop().catch(() => undefined)));
    await RabbitNode.shutdownEpmd();
  });

  test('cluster - killing the quorum leader node under load loses no confirmed message', async () => {
    const [n1, n2, n3] = nodes as [RabbitNode, RabbitNode, RabbitNode];
    // Declared through n1, so n1 leads the quorum queue.
    const setup = await connect(n1.url);
    const ch = await setup.createChannel();
    await ch.assertExchange(exchange.name, 'direct', { durable: true });
    await ch.assertQueue('cluster-q', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await setup.close();
    log(`before the kill: ${await queueInfo(n1)}`);

    const processor = new Counter({
      url: [n3.url, n2.url, n1.url].join(','),
      eqk: [[exchange, [[{ name: 'cluster-q', flags: queueFlags }, 'n']]]],
      prefetch: 50,
    });
    await processor.start();
    // The producer is on the node that will die.
    const producer = Numbers.create({ url: [n1.url, n2.url, n3.url].join(',') });
    let producerRecovered = false;
    producer.connection.on('status', (s) => {
      if (s.type === 'connected' && s.recovered) producerRecovered = true;
    });

    let killedAt = 0;
    // The survivors' view of the queue every second after the kill: when a new leader shows.
    let watching = true;
    let lastInfo = '';
    const watch = (async () => {
      while (watching) {
        if (killedAt > 0) {
          const info = await queueInfo(n2);
          if (info !== lastInfo)
            log(`+${((Date.now() - killedAt) / 1000).toFixed(1)} s: ${(lastInfo = info)}`);
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    let produced = 0;
    const confirmed = new Set<number>();
    let failed = 0;
    const failures: Record<string, number> = {};
    let producedAtKill = 0;
    const t0 = Date.now();
    const inFlight = new Set<Promise<void>>();
    while (Date.now() - t0 < 8000) {
      if (killedAt === 0 && Date.now() - t0 > 2500) {
        killedAt = Date.now();
        producedAtKill = produced;
        log(`kill -9 ${n1.name} (quorum leader, producer's node) after ${produced} messages`);
        void n1.kill();
      }
      const i = produced++;
      const p = producer
        .message_n(i)
        .then(() => void confirmed.add(i))
        .catch((err: { code?: string }) => {
          failed++;
          const code = err.code ?? 'unknown';
          failures[code] = (failures[code] ?? 0) + 1;
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 50) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    // Until the queue has a new leader the survivors nack its publishes: probe until one is
    // confirmed, which proves the failover.
    let probed = false;
    let diagnosed = false;
    // Still nacked 15 s after the kill: the same publish through a fresh postage producer and a
    // fresh amqplib channel on the producer's node tell a stale channel from a leaderless queue.
    const diagnose = async (): Promise<void> => {
      const endpoint = producer.connection.endpoint ?? '';
      const node = nodes.find((n) => endpoint.includes(`:${n.port}/`)) ?? n2;
      const fresh = Numbers.create({ url: node.url });
      const freshOutcome = await fresh.message_n(-1).then(
        () => 'confirmed',
        (err: { code?: string }) => `refused ${err.code ?? '?'}`,
      );
      await fresh.close();
      const raw = await connect(node.url);
      raw.on('error', () => undefined);
      const rawCh = await raw.createConfirmChannel();
      rawCh.on('error', () => undefined);
      const rawOutcome = await new Promise<string>((resolve) => {
        const timer = setTimeout(() => resolve('no confirm in 5 s'), 5000);
        rawCh.publish(exchange.name, 'n', Buffer.from('{}'), { persistent: true }, (err) => {
          clearTimeout(timer);
          resolve(err === null || err === undefined ? 'confirmed' : `refused: ${String(err)}`);
        });
      });
      await raw.close().catch(() => undefined);
      const again = await producer.message_n(-2).then(
        () => 'confirmed',
        (err: { code?: string }) => `refused ${err.code ?? '?'}`,
      );
      log(
        `diagnosis on ${node.name}: fresh postage producer ${freshOutcome}; fresh amqplib channel ${rawOutcome}; the producer again ${again}`,
      );
    };
    const probeStart = Date.now();
    while (!probed && Date.now() - probeStart < 60_000) {
      const i = produced++;
      await producer.message_n(i).then(
        () => {
          confirmed.add(i);
          probed = true;
        },
        (err: { code?: string }) => {
          failed++;
          const code = err.code ?? 'unknown';
          failures[code] = (failures[code] ?? 0) + 1;
        },
      );
      if (!probed) await new Promise((r) => setTimeout(r, 200));
      if (!probed && !diagnosed && Date.now() - probeStart > 15_000) {
        diagnosed = true;
        await diagnose();
      }
    }
    watching = false;
    await watch;
    const after = ((Date.now() - killedAt) / 1000).toFixed(1);
    log(
      probed
        ? `survivors confirmed a publish ${after} s after the kill`
        : `no publish confirmed ${after} s after the kill`,
    );
    // The broker's view of the queue, and a plain amqplib publish to it (no postage in the way).
    log(
      await n2
        .ctl('list_queues', 'name', 'type', 'leader', 'members', 'online')
        .catch((e: Error) => e.message),
    );
    const plain = await connect(n2.url);
    plain.on('error', () => undefined);
    const plainCh = await plain.createConfirmChannel();
    plainCh.on('error', () => undefined);
    const plainOutcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('no confirm in 5 s'), 5000);
      plainCh.sendToQueue('cluster-q', Buffer.from('{}'), { persistent: true }, (err) => {
        clearTimeout(timer);
        resolve(err === null || err === undefined ? 'confirmed' : `refused: ${String(err)}`);
      });
    });
    await plain.close().catch(() => undefined);
    log(`plain amqplib publish to cluster-q on ${n2.name}: ${plainOutcome}`);
    const deadline = Date.now() + 60_000;
    while ([...confirmed].some((i) => !processor.received.has(i)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const lost = [...confirmed].filter((i) => !processor.received.has(i)).length;
    const duplicates = [...processor.received.values()].reduce((sum, c) => sum + c - 1, 0);
    const counts = {
      produced,
      confirmed: confirmed.size,
      failed,
      received: processor.received.size,
      duplicates,
      lost,
      failures,
    };
    log(`counts ${JSON.stringify(counts)}`);
    const producerEndpoint = producer.connection.endpoint;
    await producer.close();
    await processor.stop();
    expect(lost).toBe(0);
    // Every publish settled: confirmed, or refused with a typed code. While the quorum queue
    // elects a new leader RabbitMQ nacks its publishes: NACKED is the only failure.
    expect(confirmed.size + failed).toBe(produced);
    expect(Object.keys(failures).filter((code) => code !== 'NACKED')).toEqual([]);
    // The producer failed over to a surviving node of its URL list.
    expect(producerEndpoint).not.toContain(`:${n1.port}/`);
    expect(producerRecovered).toBe(true);
    // ...and publishes again: a publish made after the kill was confirmed by the survivors.
    const confirmedAfterKill = [...confirmed].filter((i) => i >= producedAtKill).length;
    log(`confirmed after the kill: ${confirmedAfterKill}`);
    expect(probed).toBe(true);
    expect(confirmedAfterKill).toBeGreaterThan(0);
  });
});
