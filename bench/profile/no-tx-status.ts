import type { Pool, PoolClient } from 'pg';
import type { PostgresPool, PostgresPoolClient } from '../../participant-sdk/src/postgres/postgres-pool';

/**
 * A pg pool whose connections do not tell their transaction status, as a pool
 * of an older pg or a wrapping pool would not: the adapter then sends its
 * in-block guard (SAVEPOINT + RELEASE) with every PREPARE, as it did before it
 * read the status. Each connection keeps one wrapper, so what the adapter
 * remembers per connection (backend identity, system identifier) still holds.
 */
export function withoutTxStatus(pool: Pool): PostgresPool {
  const wrappers = new WeakMap<PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      const client = await pool.connect();
      let wrapper = wrappers.get(client);
      if (!wrapper) {
        wrapper = {
          query: (text, values) => client.query(text as string, values as unknown[]),
          release: (err) => client.release(err),
          on: (event, listener) => client.on(event, listener),
          removeListener: (event, listener) => client.removeListener(event, listener),
        };
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
    on: (event, listener) => pool.on(event, listener),
    removeListener: (event, listener) => pool.removeListener(event, listener),
  };
}
