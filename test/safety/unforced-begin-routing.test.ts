import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { PgCluster } from '../../harness/pg-cluster';
import { describeIfRedisServer, RedisServer } from '../../harness/redis-server';
import { ADMIN_TOKEN, CoordinatorInstance, startCoordinatorPair } from '../multi-instance/coordinator-pair';
import { createLedger } from '../service-crash/ledger-db';
import { begin, call, LedgerService, postgresStore, redisStore, SharedStore, waitFor } from './routing-fixture';

/**
 * Issue 10, finding 10: unforced begin records and failover.
 *
 * A begin record is stored, not forced (SPEC §3), so a store crash can lose
 * it while a later record of the same transaction survives (or lose them
 * all). The transaction still runs at its owner. A client whose commit fails
 * over to another instance must reach that owner: before the fix the other
 * instance found no owner in the log and answered the commit itself, from
 * the log — by deciding abort (or with 404 when every record was lost) —
 * for a transaction its live owner was able to commit.
 *
 * Two real `twopc serve` processes on one shared log (PostgreSQL, and Redis
 * with AOF `appendfsync always`), participant services with the SDK on real
 * ledger databases; the loss is made by deleting the records from the store.
 */

const LOG_DB = 'twopc_log';
// Far longer than a test: a transaction the instances leave alone stays undecided throughout.
const ENGINE = { maxTimeoutMs: 120_000, defaultTimeoutMs: 60_000 };
const TX_TIMEOUT_MS = 60_000;

describe('finding 10: routing never depends on an unforced begin record', () => {
  let cluster: PgCluster;
  let dir: string;
  let logPool: Pool;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-routing', maxPreparedTransactions: 20 });
    await Promise.all([createLedger(cluster, 'ledger_a'), createLedger(cluster, 'ledger_b'), cluster.createDatabase(LOG_DB)]);
    logPool = new Pool({ ...cluster.connectionConfig(LOG_DB), max: 2 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-safety-routing-'));
  }, 120_000);

  afterAll(async () => {
    await logPool?.end();
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The cases, on one pair of instances over `store` (the last one kills the owner). */
  function scenarios(store: () => SharedStore) {
    let one: CoordinatorInstance;
    let two: CoordinatorInstance;
    let a: LedgerService;
    let b: LedgerService;

    const diagnostics = () => [one, two].map((i) => `--- ${i.name}:\n${i.process.log.slice(-4000)}`).join('\n');

    beforeAll(async () => {
      [one, two] = await startCoordinatorPair({ dir, log: store().log, allowVolatile: store().allowVolatile, ledgers: cluster, engine: ENGINE });
      // Both services enlist at coord-1: it begins and owns every transaction here.
      [a, b] = await Promise.all([LedgerService.start(cluster, 'ledger_a', one.api), LedgerService.start(cluster, 'ledger_b', one.api)]);
    }, 120_000);

    afterAll(async () => {
      await Promise.allSettled([a?.close(), b?.close()]);
      await Promise.allSettled([one?.stop(), two?.stop()]);
    });

    let account = 0;

    /** A transfer across both ledgers in a transaction of coord-1, its two registrations in the store. */
    async function transferOnOne(): Promise<string> {
      const id = await begin(one.api, TX_TIMEOUT_MS);
      // Accounts of its own: a transaction an earlier case left running holds its rows' locks.
      account += 1;
      await a.transfer(id, account, -5);
      await b.transfer(id, account, 5);
      // Held branches register without waiting for the write: wait until the store has both.
      await waitFor('both registrations stored', async () => (await store().kinds(id)).filter((k) => k === 'enlist').length === 2, 10_000, diagnostics);
      return id;
    }

    async function expectCommittedEverywhere(id: string): Promise<void> {
      await waitFor('the transfer committed in both ledgers', async () => (await a.holds(id)) && (await b.holds(id)), 20_000, diagnostics);
      await waitFor('no prepared branch of it left', async () => (await cluster.preparedGids('twopc')).every((g) => !g.includes(id.replace(/-/g, ''))), 20_000, diagnostics);
      expect(await store().decision(id)).toMatchObject({ outcome: 'commit', source: 'engine' });
    }

    it('a commit sent to another instance reaches the owner when the begin record was lost and the registrations survived', async () => {
      const id = await transferOnOne();
      await store().loseBegin(id);
      expect(await store().kinds(id)).toEqual(['enlist', 'enlist']);

      const commit = await call(two.api, 'POST', `/v1/transactions/${id}/commit`, {});
      expect({ status: commit.status, body: commit.body }).toMatchObject({ status: 200, body: { id, state: 'committed' } });
      await expectCommittedEverywhere(id);
    }, 60_000);

    it('a commit sent to another instance reaches the owner when every record of the transaction was lost', async () => {
      const id = await transferOnOne();
      await store().loseAll(id);
      expect(await store().kinds(id)).toEqual([]);

      const commit = await call(two.api, 'POST', `/v1/transactions/${id}/commit`, {});
      expect({ status: commit.status, body: commit.body }).toMatchObject({ status: 200, body: { id, state: 'committed' } });
      await expectCommittedEverywhere(id);
    }, 60_000);

    it("another instance's orphan rollback leaves a live owner's prepared branch alone when every record of its transaction was lost", async () => {
      const id = await begin(one.api, TX_TIMEOUT_MS);
      account += 1;
      // Eager: the branch is prepared right away, while its transaction still runs at coord-1.
      await a.participant.enlist(id, async (db) => {
        await db.query('update accounts set balance = balance + $2 where id = $1', [account, -5]);
        await db.query('insert into transfers (id) values ($1)', [id]);
      }, { mode: 'eager' });
      await b.transfer(id, account, 5);
      await waitFor('both registrations stored', async () => (await store().kinds(id)).filter((k) => k === 'enlist').length === 2, 10_000, diagnostics);
      await store().loseAll(id);

      // coord-2 reaches ledger_a directly: the branch is prepared and the log knows nothing of it, yet its id names a live owner.
      const orphans = await call(two.api, 'POST', '/v1/admin/orphans/rollback', {}, ADMIN_TOKEN);
      expect(orphans.status).toBe(200);
      expect(JSON.stringify(orphans.body)).not.toContain(id.replace(/-/g, ''));
      expect(await store().decision(id)).toBeUndefined();

      const commit = await call(one.api, 'POST', `/v1/transactions/${id}/commit`, {});
      expect({ status: commit.status, body: commit.body }).toMatchObject({ status: 200, body: { id, state: 'committed' } });
      await expectCommittedEverywhere(id);
    }, 60_000);

    it('the instance that takes over a dead owner recovers its transaction whose begin record was lost at once, not after the longest timeout', async () => {
      const id = await transferOnOne();
      await store().loseBegin(id);
      one.process.signal('SIGKILL');
      expect((await one.process.exited(5_000)).signal).toBe('SIGKILL');
      await waitFor("coord-2 taking over coord-1's lease", () => two.takenOver.includes(one.tokens[0]), 20_000, diagnostics);

      // A full pass now; the transaction is far from its instances' longest timeout (120 s), so only ownership can let coord-2 act on it.
      const recovered = await call(two.api, 'POST', '/v1/admin/recover', { waitMs: 5_000 }, ADMIN_TOKEN);
      expect(recovered.status).toBe(200);
      expect(await store().decision(id)).toMatchObject({ outcome: 'abort', source: 'recovery' });
      await waitFor('both branches rolled back', async () => (await cluster.preparedGids('twopc')).length === 0, 20_000, diagnostics);
      expect([await a.holds(id), await b.holds(id)]).toEqual([false, false]);
    }, 60_000);
  }

  describe('PostgreSQL log', () => {
    scenarios(() => postgresStore(cluster.connectionString(LOG_DB), logPool, 'lost_begin'));
  });

  describeIfRedisServer('Redis log (AOF, appendfsync always)', () => {
    let redis: RedisServer;
    let client: Redis;
    beforeAll(async () => {
      redis = await RedisServer.start({ name: 'safety-routing' });
      client = new Redis(redis.url, { maxRetriesPerRequest: 2 });
    }, 30_000);
    afterAll(async () => {
      client?.disconnect();
      await redis?.destroy();
    });
    scenarios(() => redisStore(redis.url, client, 'lost-begin'));
  });
});
