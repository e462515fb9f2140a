import net from 'node:net';

/**
 * What a link does to its traffic.
 * - `pass`: forwards bytes as they come.
 * - `delay`: forwards every chunk `ms` late (order kept).
 * - `refuse`: resets each new connection at once (a connection refused or dropped by a firewall with RST).
 * - `blackhole`: accepts new connections and swallows their bytes; nothing ever answers, so the caller times out.
 * - `cut`: lets `afterBytes` more bytes through on each connection, open or new, then
 *   ends it mid-message (the receiver gets a prefix and EOF, the sender a reset).
 */
export type LinkMode =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number }
  | { kind: 'refuse' }
  | { kind: 'blackhole' }
  | { kind: 'cut'; afterBytes: number };

/** Counts of what a proxy did, for the summary. */
export interface ProxyStats {
  connections: number;
  refused: number;
  blackholed: number;
  /** Established connections reset by `resetAll`. */
  reset: number;
  /** Connections ended mid-message by `cut`. */
  cut: number;
}

type Direction = 'up' | 'down';

/** Chunks of one direction waiting for their time, so a delay never reorders bytes. */
interface Lane {
  queue: Array<{ at: number; action: () => void }>;
  timer?: NodeJS.Timeout;
}

interface Pair {
  client: net.Socket;
  upstream?: net.Socket;
  /** Bytes still let through before the connection is cut (cut mode only). */
  budget?: number;
  cut: boolean;
  lanes: Record<Direction, Lane>;
}

/**
 * A TCP proxy for one link (the coordinator calling one participant service,
 * or a service calling the coordinator), in the chaos runner's process. Its
 * mode can change at any time; `resetAll` resets what is established.
 *
 * @example
 * const link = await ChaosProxy.start('coordinator>ledger_0', { host: '127.0.0.1', port: servicePort });
 * link.setMode({ kind: 'cut', afterBytes: 40 }); // the next 40 bytes of each connection, then EOF
 */
export class ChaosProxy {
  private mode: LinkMode = { kind: 'pass' };
  private readonly pairs = new Set<Pair>();
  readonly stats: ProxyStats = { connections: 0, refused: 0, blackholed: 0, reset: 0, cut: 0 };

  private constructor(
    readonly label: string,
    private readonly server: net.Server,
    readonly port: number,
    private target: { host: string; port: number },
  ) {}

  static async start(label: string, target: { host: string; port: number }): Promise<ChaosProxy> {
    let proxy: ChaosProxy | undefined;
    // Half-open: an HTTP client may end its side and still read the answer.
    const server = net.createServer({ allowHalfOpen: true }, (client) => proxy!.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new ChaosProxy(label, server, (server.address() as net.AddressInfo).port, target);
    return proxy;
  }

  /** `http://127.0.0.1:<proxy port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get currentMode(): LinkMode {
    return this.mode;
  }

  setMode(mode: LinkMode): void {
    this.mode = mode;
    // A cut also hits connections already open: kept-alive connections carry most calls.
    for (const pair of this.pairs) pair.budget = mode.kind === 'cut' ? mode.afterBytes : undefined;
  }

  /**
   * New connections go to `target` (a load balancer moving a link to another
   * coordinator instance); established ones are cut, since a kept-alive
   * connection to a dead or paused instance would otherwise hang until its
   * caller's timeout. Not counted as a fault's reset.
   */
  retarget(target: { host: string; port: number }): void {
    this.target = target;
    for (const pair of [...this.pairs]) {
      reset(pair.client);
      if (pair.upstream) reset(pair.upstream);
      this.drop(pair);
    }
  }

  get targetPort(): number {
    return this.target.port;
  }

  /** Resets (RST) every established connection; returns how many there were. */
  resetAll(): number {
    const pairs = [...this.pairs];
    for (const pair of pairs) {
      reset(pair.client);
      if (pair.upstream) reset(pair.upstream);
      this.drop(pair);
    }
    this.stats.reset += pairs.length;
    return pairs.length;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const pair of [...this.pairs]) this.drop(pair);
    await closed;
  }

  private accept(client: net.Socket): void {
    this.stats.connections += 1;
    client.on('error', () => undefined);
    const mode = this.mode;
    if (mode.kind === 'refuse') {
      this.stats.refused += 1;
      reset(client);
      return;
    }
    const pair: Pair = { client, cut: false, lanes: { up: { queue: [] }, down: { queue: [] } }, ...(mode.kind === 'cut' ? { budget: mode.afterBytes } : {}) };
    this.pairs.add(pair);
    client.on('close', () => this.drop(pair));
    if (mode.kind === 'blackhole') {
      this.stats.blackholed += 1;
      client.on('data', () => undefined);
      return;
    }
    const upstream = net.connect({ port: this.target.port, host: this.target.host, allowHalfOpen: true });
    pair.upstream = upstream;
    // The target is down: the caller sees a reset, as it would see a refused connection.
    upstream.on('error', () => reset(client));
    upstream.on('close', () => this.drop(pair));
    client.on('data', (d: Buffer) => this.forward(pair, 'up', d));
    upstream.on('data', (d: Buffer) => this.forward(pair, 'down', d));
    client.on('end', () => this.schedule(pair, 'up', () => upstream.end()));
    upstream.on('end', () => this.schedule(pair, 'down', () => client.end()));
  }

  private forward(pair: Pair, direction: Direction, data: Buffer): void {
    if (pair.cut) return;
    const to = direction === 'up' ? pair.upstream! : pair.client;
    const from = direction === 'up' ? pair.client : pair.upstream!;
    if (pair.budget !== undefined) {
      if (data.length >= pair.budget) {
        const part = data.subarray(0, pair.budget);
        pair.cut = true;
        this.stats.cut += 1;
        this.schedule(pair, direction, () => {
          if (part.length > 0) to.write(part);
          to.end();
          reset(from);
        });
        return;
      }
      pair.budget -= data.length;
    }
    this.schedule(pair, direction, () => to.write(data));
  }

  private schedule(pair: Pair, direction: Direction, action: () => void): void {
    const lane = pair.lanes[direction];
    const delay = this.mode.kind === 'delay' ? this.mode.ms : 0;
    if (delay === 0 && lane.queue.length === 0) {
      action();
      return;
    }
    const last = lane.queue.at(-1)?.at ?? 0;
    lane.queue.push({ at: Math.max(Date.now() + delay, last), action });
    if (!lane.timer) this.drain(pair, lane);
  }

  private drain(pair: Pair, lane: Lane): void {
    lane.timer = undefined;
    while (lane.queue.length > 0 && lane.queue[0].at <= Date.now()) {
      const { action } = lane.queue.shift()!;
      if (this.pairs.has(pair)) action();
    }
    if (lane.queue.length > 0) lane.timer = setTimeout(() => this.drain(pair, lane), lane.queue[0].at - Date.now());
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    for (const lane of Object.values(pair.lanes)) {
      clearTimeout(lane.timer);
      lane.queue.length = 0;
    }
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}

function reset(socket: net.Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
