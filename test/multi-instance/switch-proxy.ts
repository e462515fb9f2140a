import net from 'node:net';

/**
 * A TCP relay in front of one coordinator instance at a time, as a load
 * balancer with health checks would be: a ledger service's COORDINATOR_URL
 * points here, and `retarget` moves it to another instance when the test
 * kills or pauses the one it talked to. Open connections are cut on retarget:
 * a pooled connection to a paused instance would otherwise hang until the
 * client's timeout.
 */
export class SwitchProxy {
  private readonly sockets = new Set<net.Socket>();

  private listening = true;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private target: number,
  ) {}

  static async start(targetPort: number): Promise<SwitchProxy> {
    let proxy: SwitchProxy | undefined;
    const server = net.createServer((client) => proxy!.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new SwitchProxy(server, (server.address() as net.AddressInfo).port, targetPort);
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** New connections go to `port`; open ones are cut (their clients reconnect). */
  retarget(port: number): void {
    this.target = port;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /**
   * Stops listening: connections are refused, as at the address of a dead
   * instance (a client can tell its request never left). `resume` listens again.
   */
  async refuse(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again (after `refuse`) and points at `port`. */
  async resume(port: number): Promise<void> {
    this.retarget(port);
    if (this.listening) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.listening = true;
  }

  async close(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
