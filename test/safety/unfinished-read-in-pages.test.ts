import { v7 as uuidv7 } from 'uuid';
import type { DecisionLog } from '../../coordinator/engine/ports/decision-log';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { RedisDecisionLog } from '../../coordinator/log/redis/redis-decision-log';
import { PgCluster } from '../../harness/pg-cluster';
import { RedisServer, describeIfRedisServer } from '../../harness/redis-server';

/**
 * Review L2: every store call has a deadline (`callTimeoutMs`), but the
 * PostgreSQL store read the whole in-doubt backlog in one statement, so the
 * deadline bounded the backlog instead of one call: past a size, every
 * attempt was cut, recovery at start failed, and a coordinator could not
 * start exactly when recovery was needed most. Both shared stores now read
 * `unfinished()` in pages, each page its own call under the deadline. (The
 * Redis store read the records in chunks already, but all the ids in one
 * ZRANGE: the same shape, though at this size that command still fits its
 * deadline, so its case here checks the paging, not a failure without it.)
 *
 * A backlog of many pages (appended in an order unlike the ids' order, with
 * completed transactions among them), read with a deadline far longer than
 * one page takes and far shorter than the whole backlog takes: every
 * unfinished transaction comes back, in the order first seen.
 */

const BACKLOG = 60_000;
const AT = 1_700_000_000_000;
jest.setTimeout(180_000);

/** Appends the backlog through `log`; returns the unfinished ids in the order they were first seen. */
async function appendBacklog(log: DecisionLog): Promise<string[]> {
  const ids = Array.from({ length: BACKLOG }, () => uuidv7());
  // First seen in an order unlike the ids' (pages go by id; the listing by first-seen order).
  for (let i = ids.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const unfinished: string[] = [];
  for (let from = 0; from < ids.length; from += 4_000) {
    await Promise.all(
      ids.slice(from, from + 4_000).map(async (txId, k) => {
        // Same `at` for all: the listing's order is then the first-seen order alone.
        await log.append({ type: 'begin', txId, at: AT, expiresAt: AT + 60_000, metadata: { pad: 'x'.repeat(600) } });
        if ((from + k) % 10 === 0) await log.append({ type: 'complete', txId, at: AT });
      }),
    );
    ids.slice(from, from + 4_000).forEach((txId, k) => {
      if ((from + k) % 10 !== 0) unfinished.push(txId);
    });
  }
  return unfinished;
}

describe('unfinished() reads a backlog larger than one call may take in pages', () => {
  let cluster: PgCluster;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-pages' });
    await cluster.createDatabase('twopc_log');
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('PostgreSQL', async () => {
    const options = { connectionString: cluster.connectionString('twopc_log'), schema: 'pages', allowVolatile: true, onWarning: () => undefined };
    const writer = new PostgresDecisionLog(options);
    await writer.open();
    const expected = await appendBacklog(writer);
    await writer.close();

    // A page takes a few ms; the whole backlog (about 40 MB) in one statement far longer than this. Not
    // shorter: on a slow, loaded machine opening a connection alone took more than 80 ms.
    const reader = new PostgresDecisionLog({ ...options, callTimeoutMs: 250, retryDeadlineMs: 10_000 });
    await reader.open();
    try {
      const listed = await reader.unfinished().then(
        (snapshots) => snapshots.map((s) => s.txId),
        (e: Error) => e.message,
      );
      expect(typeof listed === 'string' ? listed : { count: listed.length, inOrder: listed.every((id, i) => id === expected[i]) }).toEqual({ count: expected.length, inOrder: true });
    } finally {
      await reader.close();
    }
  });
});

describeIfRedisServer('unfinished() on Redis reads in pages', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await RedisServer.start({ name: 'safety-pages' });
  });

  afterAll(async () => {
    await server?.destroy();
  });

  it('Redis', async () => {
    const options = { url: server.url, namespace: 'pages', allowVolatile: true, onWarning: () => undefined };
    const writer = new RedisDecisionLog(options);
    await writer.open();
    const expected = await appendBacklog(writer);
    await writer.close();

    const reader = new RedisDecisionLog({ ...options, callTimeoutMs: 40, retryDeadlineMs: 10_000 });
    await reader.open();
    try {
      const listed = await reader.unfinished().then(
        (snapshots) => snapshots.map((s) => s.txId),
        (e: Error) => e.message,
      );
      expect(typeof listed === 'string' ? listed : { count: listed.length, inOrder: listed.every((id, i) => id === expected[i]) }).toEqual({ count: expected.length, inOrder: true });
    } finally {
      await reader.close();
    }
  });
});
