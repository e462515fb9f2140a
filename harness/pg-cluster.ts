import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from '../coordinator/demo/free-port';
import { findPostgresBin } from '../coordinator/demo/postgres-binaries';

export interface ClusterOptions {
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

// PostgreSQL refuses to run as root; as root we run it as `nobody`.
const RUN_AS = process.getuid && process.getuid() === 0 ? { uid: 65534, gid: 65534 } : undefined;
const live = new Set<PgCluster>();

// Last resort when a test process exits without destroy(): no cluster outlives it.
process.once('exit', () => {
  for (const cluster of live) cluster.killSync();
});

/**
 * A throwaway PostgreSQL cluster on a free port, with its own data directory.
 * It can be crashed (immediate stop: no checkpoint, like a power cut for the
 * server process) and started again on the same port and data.
 */
export class PgCluster {
  readonly port: number;
  readonly dir: string;
  readonly host = '127.0.0.1';
  private proc?: ChildProcess;
  private readonly bin: string;

  private constructor(port: number, dir: string, bin: string, private readonly options: Required<ClusterOptions>) {
    this.port = port;
    this.dir = dir;
    this.bin = bin;
  }

  static async start(options: ClusterOptions = {}): Promise<PgCluster> {
    const opts: Required<ClusterOptions> = {
      name: options.name ?? 'pg',
      maxPreparedTransactions: options.maxPreparedTransactions ?? 100,
      maxConnections: options.maxConnections ?? 120,
      durable: options.durable ?? false,
      settings: options.settings ?? {},
    };
    // Found before the data directory exists, so a missing binary leaves nothing behind.
    const bin = findPostgresBin();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-${opts.name}-`));
    const cluster = new PgCluster(await freePort(), dir, bin, opts);
    live.add(cluster);
    try {
      cluster.initdb();
      await cluster.startServer();
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
    return cluster;
  }

  /**
   * A streaming standby of `primary` (a real one: WAL streamed over a
   * replication connection, hot standby for reads), named `applicationName` in
   * the primary's pg_stat_replication and synchronous_standby_names. It starts
   * from a cold copy of the primary's data directory: the primary is stopped
   * cleanly (a checkpoint), copied, and started again, so no pg_basebackup of
   * the same major version is needed.
   */
  static async standbyOf(primary: PgCluster, applicationName: string): Promise<PgCluster> {
    const bin = findPostgresBin();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-${applicationName}-`));
    const conninfo = `host=${primary.host} port=${primary.port} user=postgres application_name=${applicationName}`;
    const opts: Required<ClusterOptions> = { ...primary.options, name: applicationName, settings: { ...primary.options.settings, primary_conninfo: conninfo, hot_standby: 'on' } };
    delete opts.settings.synchronous_standby_names;
    const standby = new PgCluster(await freePort(), dir, bin, opts);
    live.add(standby);
    try {
      await primary.stop();
      // cp -a keeps the owner (nobody, when running as root) and modes PostgreSQL insists on.
      const copy = spawnSync('cp', ['-a', primary.dataDir, standby.dataDir], { encoding: 'utf8' });
      await primary.startServer();
      if (copy.status !== 0) throw new Error(`copying ${primary.dataDir} failed: ${copy.stderr}`);
      if (RUN_AS) fs.chownSync(dir, RUN_AS.uid, RUN_AS.gid);
      fs.rmSync(path.join(standby.dataDir, 'postmaster.pid'), { force: true });
      fs.writeFileSync(path.join(standby.dataDir, 'standby.signal'), '');
      if (RUN_AS) fs.chownSync(path.join(standby.dataDir, 'standby.signal'), RUN_AS.uid, RUN_AS.gid);
      await standby.startServer();
    } catch (e) {
      await standby.destroy();
      throw e;
    }
    return standby;
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
    if (RUN_AS) fs.chownSync(this.dir, RUN_AS.uid, RUN_AS.gid);
    const result = spawnSync(
      path.join(this.bin, 'initdb'),
      ['-D', this.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { ...RUN_AS, encoding: 'utf8' },
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
    const proc = spawn(path.join(this.bin, 'postgres'), args, { ...RUN_AS, stdio: ['ignore', log, log] });
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

  /** GIDs of prepared transactions whose GID starts with `prefix_` (any database of the cluster). */
  async preparedGids(prefix: string): Promise<string[]> {
    return this.withClient(async (c) => {
      const r = await c.query<{ gid: string }>(`select gid from pg_prepared_xacts where starts_with(gid, $1) order by gid`, [`${prefix}_`]);
      return r.rows.map((row) => row.gid);
    });
  }

  /** Throws, listing them, if any prepared transaction of ours is left behind. */
  async assertNoPrepared(prefix: string): Promise<void> {
    const left = await this.preparedGids(prefix);
    if (left.length > 0) throw new Error(`${this.options.name}: ${left.length} prepared transaction(s) left behind: ${left.slice(0, 10).join(', ')}`);
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
