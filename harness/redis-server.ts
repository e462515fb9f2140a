import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../coordinator/demo/free-port';

export interface RedisServerOptions {
  /** Label used in the temp dir name and messages. */
  name?: string;
  /** `appendonly yes` (default true). */
  appendonly?: boolean;
  /** Default `always`: every write fsynced before the reply. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** More redis-server arguments, e.g. `['--rename-command', 'CONFIG', '']`. */
  args?: string[];
}

const live = new Set<RedisServer>();

// Last resort when a test process exits without destroy(): no server outlives it.
process.once('exit', () => {
  for (const server of live) server.killSync();
});

/** The redis-server binary: REDIS_SERVER_BIN, else `redis-server` on PATH; undefined if there is none. */
export function findRedisServer(): string | undefined {
  const candidate = process.env.REDIS_SERVER_BIN || 'redis-server';
  const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
  return probe.status === 0 && /Redis server/.test(probe.stdout) ? candidate : undefined;
}

/**
 * A throwaway redis-server on a free port with its own directory, by default
 * with `appendonly yes` + `appendfsync always`. It can be killed with SIGKILL
 * (the AOF is all that survives, as after a crash) and started again on the
 * same directory and port, which replays the AOF.
 */
export class RedisServer {
  readonly host = '127.0.0.1';
  private proc?: ChildProcess;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly bin: string,
    private readonly options: Required<RedisServerOptions>,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const bin = findRedisServer();
    if (!bin) throw new Error('no redis-server binary: install Redis (apt-get install redis-server) or set REDIS_SERVER_BIN');
    const opts: Required<RedisServerOptions> = { name: options.name ?? 'redis', appendonly: options.appendonly ?? true, appendfsync: options.appendfsync ?? 'always', args: options.args ?? [] };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-${opts.name}-`));
    const server = new RedisServer(await freePort(), dir, bin, opts);
    live.add(server);
    try {
      await server.startServer();
    } catch (e) {
      await server.destroy();
      throw e;
    }
    return server;
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The server process id (for tests that signal it themselves). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the server (again) on the same port and directory; resolves once it answers PING (AOF replayed). */
  async startServer(): Promise<void> {
    if (this.running) return;
    const o = this.options;
    const args = [
      '--port', String(this.port),
      '--bind', this.host,
      '--dir', this.dir,
      '--appendonly', o.appendonly ? 'yes' : 'no',
      '--appendfsync', o.appendfsync,
      '--save', '',
      '--daemonize', 'no',
      '--protected-mode', 'no',
      '--logfile', path.join(this.dir, 'redis.log'),
      ...o.args,
    ];
    const proc = spawn(this.bin, args, { stdio: 'ignore' });
    this.proc = proc;
    this.guard(proc);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (!this.running) throw new Error(`redis-server ${o.name} exited at start; see ${path.join(this.dir, 'redis.log')}:\n${this.logTail()}`);
      if ((await this.ping()) === '+PONG') return;
      if (Date.now() > deadline) throw new Error(`redis-server ${o.name} did not answer PING in 20 s:\n${this.logTail()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGKILL: no shutdown, nothing flushed but what the AOF already has. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
  }

  /** SIGKILL and start again on the same AOF. */
  async restart(): Promise<void> {
    await this.kill();
    await this.startServer();
  }

  /** Kills the server and removes its directory (kept when TWOPC_KEEP_CLUSTERS=1, for inspection). */
  async destroy(): Promise<void> {
    await this.kill();
    live.delete(this);
    if (process.env.TWOPC_KEEP_CLUSTERS !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last-resort cleanup for process exit. */
  killSync(): void {
    if (this.running) this.proc?.kill('SIGKILL');
    if (process.env.TWOPC_KEEP_CLUSTERS !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'redis.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** The first reply line to an inline PING, or undefined if the server is not accepting connections. */
  private ping(): Promise<string | undefined> {
    return new Promise((resolve) => {
      const socket = net.connect(this.port, this.host);
      let reply = '';
      const done = (v: string | undefined) => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(1000, () => done(undefined));
      socket.on('error', () => done(undefined));
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (d) => {
        reply += d.toString();
        if (reply.includes('\r\n')) done(reply.split('\r\n')[0]);
      });
    });
  }

  /**
   * A detached watcher that SIGKILLs the server if this process dies without
   * cleaning up (a jest worker killed on timeout, a bench killed with SIGKILL):
   * the exit handler above does not run then. It ends with the server.
   */
  private guard(proc: ChildProcess): void {
    if (!proc.pid) return;
    const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${proc.pid} 2>/dev/null; do sleep 1; done; kill -9 ${proc.pid} 2>/dev/null; true`;
    spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
  }
}

/** Where the Redis suites get a server: a redis-server binary (throwaway servers), else REDIS_URL. */
export interface RedisAvailability {
  bin?: string;
  url?: string;
}

export function redisAvailability(): RedisAvailability {
  return { bin: findRedisServer(), url: process.env.REDIS_URL || undefined };
}

function missing(name: string, needs: string): void {
  const message = `${name}: skipped, ${needs}`;
  // CI always runs the Redis suites: a CI machine without Redis is a broken CI machine, not a pass.
  if (process.env.CI === 'true') throw new Error(`${message} — and CI=true, where the Redis suites must run: install redis-server (or set REDIS_SERVER_BIN)`);
  console.warn(message);
}

/**
 * `describe` for suites that start their own redis-server (to kill it, or to
 * start it without persistence). Without a redis-server binary the suite is
 * skipped with a message — or, under CI=true, fails.
 */
export function describeIfRedisServer(name: string, fn: () => void): void {
  if (findRedisServer()) return describe(name, fn);
  missing(name, 'no redis-server binary (PATH or REDIS_SERVER_BIN)');
  describe.skip(`${name} [no redis-server]`, fn);
}

/**
 * `describe` for suites that need any Redis: a throwaway redis-server when
 * the binary is there, else the server at REDIS_URL. Without either the suite
 * is skipped with a message — or, under CI=true, fails.
 */
export function describeIfRedis(name: string, fn: (availability: RedisAvailability) => void): void {
  const availability = redisAvailability();
  if (availability.bin || availability.url) return describe(name, () => fn(availability));
  missing(name, 'no redis-server binary (PATH or REDIS_SERVER_BIN) and no REDIS_URL');
  describe.skip(`${name} [no Redis]`, () => fn(availability));
}
