import type Redis from 'ioredis';
import type { Pool } from 'pg';
import { logKeys } from '../../coordinator/log/redis/redis-keys';

/** What the test reads from the shared decision log directly, bypassing the instances. */
export interface StoreView {
  /** Transactions in the log not completed yet. */
  unfinished(): Promise<number>;
  /** The lease that took lease `token` over, if one did. */
  takenOverBy(token: number): Promise<number | undefined>;
}

/** The PostgreSQL log's tables in `schema` (twopc_log_transactions, twopc_log_leases). */
export function postgresStoreView(pool: Pool, schema: string): StoreView {
  return {
    async unfinished() {
      const r = await pool.query<{ n: string }>(`select count(*)::text as n from ${schema}.twopc_log_transactions where completed_at is null`);
      return Number(r.rows[0].n);
    },
    async takenOverBy(token) {
      const r = await pool.query<{ by: string | null }>(`select taken_over_by::text as by from ${schema}.twopc_log_leases where token = $1`, [token]);
      return r.rows[0]?.by == null ? undefined : Number(r.rows[0].by);
    },
  };
}

/** The Redis log's keys of `namespace` (the unfinished set, one hash per lease). */
export function redisStoreView(client: Redis, namespace: string): StoreView {
  const keys = logKeys(namespace);
  return {
    unfinished: () => client.zcard(keys.unfinished),
    async takenOverBy(token) {
      const by = await client.hget(keys.lease(token), 'takenOverBy');
      return by === null || by === '' ? undefined : Number(by);
    },
  };
}
