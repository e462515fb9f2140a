import Redis from 'ioredis';
import { Client } from 'pg';
import { logKeys } from '../coordinator/log/redis/redis-keys';
import { PgCluster } from '../harness/pg-cluster';
import { RedisServer } from '../harness/redis-server';
import type { Teardown } from './teardown';

/** A lease as the store holds it (SPEC §7: one per process start; `takenOverBy` once another instance took it). */
export interface StoredLease {
  token: number;
  name: string;
  expiresAt: number;
  takenOverBy?: number;
}

/** What the runner reads from the shared log itself, bypassing the instances. */
export interface SharedLogState {
  /** Transactions in the log not completed yet. */
  unfinished: string[];
  leases: StoredLease[];
  /** The store's clock. */
  now: number;
}

const LOG_DATABASE = 'twopc_log';
const LOG_SCHEMA = 'chaos';
const NAMESPACE = 'chaos';

/**
 * The decision log several coordinator instances share, on a throwaway
 * server of its own: a PostgreSQL cluster (fsync off like every test
 * cluster, so the instances start with `allowVolatile`: a crash of the
 * server process, which is what the runner injects, loses nothing the OS
 * was given) or a redis-server with `appendonly yes` + `appendfsync always`
 * (no allowVolatile needed). It can be crashed and started again, and read
 * directly for the checks after quiescence.
 */
export class SharedLog {
  private constructor(
    readonly kind: 'postgres' | 'redis',
    /** The `log` of the coordinators' config. */
    readonly url: string,
    readonly allowVolatile: boolean,
    private readonly pg?: PgCluster,
    private readonly redis?: RedisServer,
  ) {}

  static async start(kind: 'postgres' | 'redis', teardown: Teardown): Promise<SharedLog> {
    if (kind === 'postgres') {
      const cluster = await PgCluster.start({ name: 'chaos-log', maxConnections: 100 });
      teardown.add('log cluster chaos-log', () => cluster.destroy());
      await cluster.createDatabase(LOG_DATABASE);
      return new SharedLog('postgres', `${cluster.connectionString(LOG_DATABASE)}?schema=${LOG_SCHEMA}`, true, cluster);
    }
    const server = await RedisServer.start({ name: 'chaos-log', appendonly: true, appendfsync: 'always' });
    teardown.add('log redis-server', () => server.destroy());
    return new SharedLog('redis', `${server.url}?namespace=${NAMESPACE}`, false, undefined, server);
  }

  get running(): boolean {
    return this.pg ? this.pg.running : this.redis!.running;
  }

  /** `postgres cluster on :5433` / `redis-server on :6380`, for the fault log. */
  get label(): string {
    return this.pg ? `PostgreSQL log cluster :${this.pg.port}` : `redis-server :${this.redis!.port}`;
  }

  /** Immediate stop of the PostgreSQL cluster (no checkpoint), or SIGKILL of the redis-server (its AOF is what survives). */
  async crash(): Promise<void> {
    if (this.pg) await this.pg.crash();
    else await this.redis!.kill();
  }

  /** Starts it again on the same data (WAL recovery, or AOF replay). */
  async start(): Promise<void> {
    if (this.pg) await this.pg.startServer();
    else await this.redis!.startServer();
  }

  /** The unfinished transactions and every lease, read from the store. */
  async read(): Promise<SharedLogState> {
    return this.pg ? this.readPostgres(this.pg) : this.readRedis(this.redis!);
  }

  private async readPostgres(cluster: PgCluster): Promise<SharedLogState> {
    const client = new Client({ ...cluster.connectionConfig(LOG_DATABASE), connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const unfinished = await client.query<{ tx_id: string }>(`select tx_id from ${LOG_SCHEMA}.twopc_log_transactions where completed_at is null order by tx_id`);
      const leases = await client.query<{ token: string; name: string; expires_at: number; taken_over_by: string | null; now: number }>(
        `select token::text, name, (extract(epoch from expires_at) * 1000)::double precision as expires_at, taken_over_by::text,
           (extract(epoch from clock_timestamp()) * 1000)::double precision as now
         from ${LOG_SCHEMA}.twopc_log_leases order by token`,
      );
      const now = leases.rows[0]?.now ?? Date.now();
      return {
        unfinished: unfinished.rows.map((r) => r.tx_id),
        leases: leases.rows.map((r) => ({ token: Number(r.token), name: r.name, expiresAt: Number(r.expires_at), ...(r.taken_over_by === null ? {} : { takenOverBy: Number(r.taken_over_by) }) })),
        now: Number(now),
      };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async readRedis(server: RedisServer): Promise<SharedLogState> {
    const client = new Redis(server.url, { maxRetriesPerRequest: 1, connectTimeout: 5_000, lazyConnect: true });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const keys = logKeys(NAMESPACE);
      const unfinished = await client.zrange(keys.unfinished, 0, -1);
      const tokens = await client.zrange(keys.leases, 0, -1);
      const leases: StoredLease[] = [];
      for (const token of tokens) {
        const h = await client.hgetall(keys.lease(token));
        leases.push({ token: Number(token), name: h.name ?? '', expiresAt: Number(h.expiresAt), ...(h.takenOverBy ? { takenOverBy: Number(h.takenOverBy) } : {}) });
      }
      const [seconds, micros] = await client.time();
      return { unfinished, leases, now: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) };
    } finally {
      client.disconnect();
    }
  }
}

/**
 * Leases that break "every lease of a dead process was taken over": once
 * every instance runs, the only leases not taken over must be the newest one
 * of each running instance's name (a restart takes over its previous
 * processes, a fenced process's old lease was taken over by definition).
 */
export function leaseProblems(state: SharedLogState, running: ReadonlySet<string>): string[] {
  const newest = new Map<string, number>();
  for (const l of state.leases) newest.set(l.name, Math.max(newest.get(l.name) ?? 0, l.token));
  const problems: string[] = [];
  for (const l of state.leases) {
    if (l.takenOverBy !== undefined) continue;
    if (newest.get(l.name) === l.token && running.has(l.name)) continue;
    const age = state.now - l.expiresAt;
    problems.push(`lease ${l.token} of ${l.name} (${newest.get(l.name) === l.token ? 'its process is not running' : `a newer one, ${newest.get(l.name)}, exists`}) was not taken over${age > 0 ? `, expired ${Math.round(age)} ms ago` : ''}`);
  }
  return problems;
}
