import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type Redis from 'ioredis';
import { Pool } from 'pg';
import { createParticipant, TwopcParticipant } from '../../participant-sdk/src';
import { logKeys } from '../../coordinator/log/redis/redis-keys';
import type { PgCluster } from '../../harness/pg-cluster';
import { API_TOKEN, SECRET } from '../multi-instance/coordinator-pair';

/**
 * What the routing tests (several `twopc serve` instances on one shared log)
 * share: calls to an instance, a participant service in this process on a
 * real ledger database, and a view of the shared store that can lose records
 * the way a store crash loses unforced writes.
 */

export interface Reply {
  status: number;
  /** Parsed JSON, or the raw text. */
  body: any;
}

/** One call to a coordinator instance (`/v1` token unless another is given). */
export async function call(base: string, method: 'GET' | 'POST', path: string, body?: unknown, token = API_TOKEN): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** Begins a transaction on `base` and returns its id. */
export async function begin(base: string, timeoutMs: number): Promise<string> {
  const r = await call(base, 'POST', '/v1/transactions', { timeoutMs });
  if (r.status !== 201) throw new Error(`begin answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000, diagnostics: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${diagnostics()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A participant service on ledger `db` (test/service-crash/ledger-db.ts),
 * run in this process with the SDK: its router listens on a port of its
 * own, and it enlists through `coordinatorUrl`.
 */
export class LedgerService {
  private constructor(
    readonly pool: Pool,
    readonly participant: TwopcParticipant,
    private readonly server: Server,
  ) {}

  static async start(cluster: PgCluster, db: string, coordinatorUrl: string): Promise<LedgerService> {
    const pool = new Pool({ ...cluster.connectionConfig(db), max: 6 });
    pool.on('error', () => undefined);
    const app = express();
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const participant = createParticipant({
      name: db,
      pool,
      coordinatorUrl,
      apiToken: API_TOKEN,
      secret: SECRET,
      publicUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/twopc`,
      // The test decides when branches end; the coordinators' own sweeps and decisions do the rest.
      sweepIntervalMs: 0,
      pruneIntervalMs: 0,
    });
    app.use('/twopc', participant.router());
    await participant.start();
    return new LedgerService(pool, participant, server);
  }

  /** Moves `delta` on one account and records transfer `txId`, in a branch of `txId` (held until PREPARE). */
  transfer(txId: string, account: number, delta: number): Promise<void> {
    return this.participant.enlist(txId, async (db) => {
      await db.query('update accounts set balance = balance + $2 where id = $1', [account, delta]);
      await db.query('insert into transfers (id) values ($1)', [txId]);
    });
  }

  /** True once transfer `txId` is committed here. */
  async holds(txId: string): Promise<boolean> {
    return (await this.pool.query('select 1 from transfers where id = $1', [txId])).rowCount === 1;
  }

  async close(): Promise<void> {
    await this.participant.close();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    await this.pool.end();
  }
}

/** The shared decision log as the test sees it directly, bypassing the instances. */
export interface SharedStore {
  /** The log URL both instances are configured with. */
  log: string;
  allowVolatile: boolean;
  /** The types of a transaction's records, in order. */
  kinds(txId: string): Promise<string[]>;
  /** The transaction's decision, if any. */
  decision(txId: string): Promise<{ outcome: string; source: string } | undefined>;
  /** A store crash lost the begin record (stored, not forced); its later records survived. */
  loseBegin(txId: string): Promise<void>;
  /** A store crash lost every record of the transaction (none of them was forced). */
  loseAll(txId: string): Promise<void>;
}

export function postgresStore(logUrl: string, pool: Pool, schema: string): SharedStore {
  return {
    log: `${logUrl}?schema=${schema}`,
    // The harness cluster runs with fsync off.
    allowVolatile: true,
    async kinds(txId) {
      const r = await pool.query<{ kind: string }>(`select kind from ${schema}.twopc_log_records where tx_id = $1 order by seq`, [txId]);
      return r.rows.map((row) => row.kind);
    },
    async decision(txId) {
      const r = await pool.query<{ record: string }>(`select record from ${schema}.twopc_log_records where tx_id = $1 and kind = 'decision'`, [txId]);
      return r.rows[0] && (JSON.parse(r.rows[0].record) as { outcome: string; source: string });
    },
    async loseBegin(txId) {
      await pool.query(`delete from ${schema}.twopc_log_records where tx_id = $1 and kind = 'begin'`, [txId]);
    },
    async loseAll(txId) {
      await pool.query(`delete from ${schema}.twopc_log_records where tx_id = $1`, [txId]);
      await pool.query(`delete from ${schema}.twopc_log_transactions where tx_id = $1`, [txId]);
    },
  };
}

export function redisStore(redisUrl: string, client: Redis, namespace: string): SharedStore {
  const keys = logKeys(namespace);
  // List entries are `<op id>|<json>`, and `d` for the decision (its text under the decision key).
  const entries = (txId: string) => client.lrange(keys.records(txId), 0, -1);
  return {
    log: `${redisUrl}?namespace=${namespace}`,
    allowVolatile: false,
    async kinds(txId) {
      return (await entries(txId)).map((e) => (e === 'd' ? 'decision' : (JSON.parse(e.slice(e.indexOf('|') + 1)) as { type: string }).type));
    },
    async decision(txId) {
      const text = await client.get(keys.decision(txId));
      return text === null ? undefined : (JSON.parse(text) as { outcome: string; source: string });
    },
    async loseBegin(txId) {
      const entry = (await entries(txId)).find((e) => e.includes('"type":"begin"'));
      if (entry) await client.lrem(keys.records(txId), 1, entry);
    },
    async loseAll(txId) {
      await client.del(keys.records(txId), keys.decision(txId));
      await client.zrem(keys.unfinished, txId);
    },
  };
}
