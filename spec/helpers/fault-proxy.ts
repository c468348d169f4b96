/**
 * A small TCP proxy on 127.0.0.1 between a client and the broker, for network faults:
 * `stall()` silently drops every byte of the open connections in both directions (a black hole:
 * only heartbeats can notice), `reset()` kills them with a TCP RST. New connections pass.
 */
import net from 'node:net';

export class FaultProxy {
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; stalled: boolean }>();
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** Listens on a free loopback port and forwards to `targetPort`. */
  static start(targetPort: number): Promise<FaultProxy> {
    return new Promise((resolve, reject) => {
      let proxy: FaultProxy | undefined;
      const server = net.createServer((client) => {
        const upstream = net.connect(targetPort, '127.0.0.1');
        const pair = { client, upstream, stalled: false };
        proxy?.pairs.add(pair);
        if (proxy !== undefined) proxy.accepted++;
        client.setNoDelay(true);
        upstream.setNoDelay(true);
        client.on('data', (chunk) => {
          if (!pair.stalled) upstream.write(chunk);
        });
        upstream.on('data', (chunk) => {
          if (!pair.stalled) client.write(chunk);
        });
        const end = (): void => {
          proxy?.pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        };
        client.on('error', end);
        upstream.on('error', end);
        client.on('close', end);
        upstream.on('close', end);
      });
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address() as net.AddressInfo;
        proxy = new FaultProxy(server, address.port);
        resolve(proxy);
      });
    });
  }

  /** `amqp://guest:guest@127.0.0.1:<proxy port>`. */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** Open connections. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Drops every byte of the open connections from now on; the sockets stay open. */
  stall(): void {
    for (const pair of this.pairs) pair.stalled = true;
  }

  /** Resets the open connections (TCP RST to the client, close to the broker). */
  reset(): void {
    for (const pair of [...this.pairs]) {
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
      this.pairs.delete(pair);
    }
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    for (const pair of [...this.pairs]) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
