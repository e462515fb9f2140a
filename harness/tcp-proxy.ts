import net from 'node:net';

type Direction = 'request' | 'reply';

/**
 * A TCP proxy in front of a server that can lose one message on cue and cut
 * every connection: `loseNext('reply')` lets the next request run on the
 * server and swallows its answer (the client cannot know it ran);
 * `loseNext('request')` swallows the next request itself. This is the window
 * in which a driver may resend a command, or a store must decide whether a
 * write it sent took effect.
 */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private armed?: { direction: Direction; fired: () => void };
  private dropping = new Set<Direction>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = net.createServer((client) => proxy!.accept(client, targetPort, targetHost));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** Arms the proxy; resolves once a message was lost and the connections cut. */
  loseNext(direction: Direction): Promise<void> {
    return new Promise((fired) => {
      this.armed = { direction, fired };
    });
  }

  /**
   * Stops forwarding in `direction` (or both) while every connection stays
   * open and new ones are still accepted: a peer gone without a FIN or RST (a
   * pulled cable, a firewall dropping packets, a frozen host). Nothing errors;
   * calls just get no answer — only the client's own timers can end them.
   * With 'reply', requests still reach the server and run there.
   */
  blackHole(direction: Direction | 'both' = 'both'): void {
    this.dropping = new Set(direction === 'both' ? ['request', 'reply'] : [direction]);
  }

  /** Forwards again; the connections that lost data while black-holed are cut (their clients reconnect). */
  heal(): void {
    this.dropping.clear();
    this.cutAll();
  }

  /** Replaces `:<targetPort>` in a URL by the proxy's port. */
  url(targetUrl: string, targetPort: number): string {
    return targetUrl.replace(`:${targetPort}`, `:${this.port}`);
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, port: number, host: string): void {
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d) => this.forward('request', d, upstream));
    upstream.on('data', (d) => this.forward('reply', d, client));
  }

  private forward(direction: Direction, data: Buffer, to: net.Socket): void {
    if (this.dropping.has(direction)) return;
    const armed = this.armed;
    if (armed && armed.direction === direction) {
      this.armed = undefined;
      this.cutAll();
      armed.fired();
      return;
    }
    to.write(data);
  }

  private cutAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}
