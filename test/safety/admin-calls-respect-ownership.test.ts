import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { PgCluster } from '../../harness/pg-cluster';
import { describeIfRedisServer, RedisServer } from '../../harness/redis-server';
import { ADMIN_TOKEN, CoordinatorInstance, startCoordinatorPair } from '../multi-instance/coordinator-pair';
import { runCli } from '../cli/cli-fixture';
import { createLedger } from '../service-crash/ledger-db';
import { begin, call, LedgerService, postgresStore, redisStore, SharedStore, waitFor } from './routing-fixture';

/**
 * Issue 10, finding 1 (relaying part): admin calls respect ownership.
 *
 * The admin API's calls on one transaction (`twopc show|history|retry|resolve|settle
 * ID --url …`) are relayed to the live instance that owns it, as `/v1` calls
 * are, or refused with `503 owner-unavailable` when it cannot be reached —
 * never acted on locally. Before the fix any instance acted on its own view
 * of the shared log: an operator's `resolve --abort` sent to the wrong
 * instance recorded an abort under a transaction its owner was running, and
 * the owner's commit then failed.
 *
 * Two real `twopc serve` processes on one shared log (PostgreSQL, and Redis
 * with AOF `appendfsync always`), participant services with the SDK on real
 * ledger databases. The lease is long (30 s), so an owner killed by the
 * test still holds it while the test asks.
 */

const LOG_DB = 'twopc_log';
const ENGINE = { maxTimeoutMs: 120_000, defaultTimeoutMs: 60_000 };
const TX_TIMEOUT_MS = 60_000;
const LEASE_MS = 30_000;

describe('finding 1: admin calls for a transaction another live instance owns are relayed to it or refused', () => {
  let cluster: PgCluster;
  let dir: string;
  let logPool: Pool;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-admin', maxPreparedTransactions: 20 });
    await Promise.all([createLedger(cluster, 'ledger_a'), createLedger(cluster, 'ledger_b'), cluster.createDatabase(LOG_DB)]);
    logPool = new Pool({ ...cluster.connectionConfig(LOG_DB), max: 2 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-safety-admin-'));
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
    let account = 0;

    const diagnostics = () => [one, two].map((i) => `--- ${i.name}:\n${i.process.log.slice(-4000)}`).join('\n');
    const admin = (at: CoordinatorInstance, method: 'GET' | 'POST', suffix: string, body?: unknown) => call(at.api, method, `/v1/admin/transactions/${suffix}`, body, ADMIN_TOKEN);

    /** `twopc_relayed_requests_total` of an instance, by outcome. */
    async function relayed(at: CoordinatorInstance): Promise<Record<string, number>> {
      const text = await (await fetch(`${at.api}/metrics`)).text();
      const counts: Record<string, number> = { relayed: 0, 'owner-unavailable': 0 };
      for (const m of text.matchAll(/^twopc_relayed_requests_total\{outcome="([a-z-]+)"\} (\d+)$/gm)) counts[m[1]] = Number(m[2]);
      return counts;
    }

    beforeAll(async () => {
      [one, two] = await startCoordinatorPair({ dir, log: store().log, allowVolatile: store().allowVolatile, ledgers: cluster, leaseMs: LEASE_MS, engine: ENGINE });
      // Both services enlist at coord-1: it begins and owns every transaction here.
      [a, b] = await Promise.all([LedgerService.start(cluster, 'ledger_a', one.api), LedgerService.start(cluster, 'ledger_b', one.api)]);
    }, 120_000);

    afterAll(async () => {
      await Promise.allSettled([a?.close(), b?.close()]);
      await Promise.allSettled([one?.stop(), two?.stop()]);
    });

    /** A transfer across both ledgers in a transaction coord-1 runs, its two registrations in the store. */
    async function transferOnOne(): Promise<string> {
      const id = await begin(one.api, TX_TIMEOUT_MS);
      // Accounts of its own: a transaction an earlier case left running holds its rows' locks.
      account += 1;
      await a.transfer(id, account, -5);
      await b.transfer(id, account, 5);
      await waitFor('both registrations stored', async () => (await store().kinds(id)).filter((k) => k === 'enlist').length === 2, 10_000, diagnostics);
      return id;
    }

    it("an operator's resolve --abort sent to another instance is relayed to the owner, which refuses it; the owner's commit then commits", async () => {
      const id = await transferOnOne();

      const resolve = await admin(two, 'POST', `${id}/resolve`, { outcome: 'abort' });
      expect({ status: resolve.status, code: resolve.body.code }).toEqual({ status: 409, code: 'state-conflict' });
      expect(resolve.body.detail).toMatch(/running in this coordinator/);
      // The same through the CLI, as an operator runs it.
      const cli = await runCli(['resolve', id, '--abort', '--yes', '--url', two.api], { TWOPC_ADMIN_TOKEN: ADMIN_TOKEN });
      expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 5, stderr: expect.stringMatching(/running in this coordinator.*\[state-conflict\]/) });
      expect(await store().decision(id)).toBeUndefined();

      const commit = await call(one.api, 'POST', `/v1/transactions/${id}/commit`, {});
      expect({ status: commit.status, state: commit.body.state }).toEqual({ status: 200, state: 'committed' });
      await waitFor('the transfer committed in both ledgers', async () => (await a.holds(id)) && (await b.holds(id)), 20_000, diagnostics);
    }, 60_000);

    it('show, history and retry sent to another instance are answered by the owner', async () => {
      const id = await transferOnOne();
      const before = await relayed(two);

      const show = await admin(two, 'GET', id);
      expect({ status: show.status, body: show.body }).toMatchObject({ status: 200, body: { id, state: 'active', branches: [{ participant: 'ledger_a' }, { participant: 'ledger_b' }] } });
      const history = await admin(two, 'GET', `${id}/history`);
      expect(history.status).toBe(200);
      expect(history.body).toEqual((await admin(one, 'GET', `${id}/history`)).body);
      const retry = await admin(two, 'POST', `${id}/retry`, {});
      expect({ status: retry.status, body: retry.body }).toMatchObject({ status: 200, body: { txId: id, retried: false, decision: null } });
      // A settle is the owner's to judge too: it runs there (and has no hazard to settle).
      const settle = await admin(two, 'POST', `${id}/settle`, { note: 'reconciled by hand' });
      expect({ status: settle.status, code: settle.body.code, detail: settle.body.detail }).toEqual({ status: 409, code: 'state-conflict', detail: expect.stringMatching(/has no heuristic hazard/) });

      const after = await relayed(two);
      expect({ relayed: after.relayed - before.relayed, unavailable: after['owner-unavailable'] - before['owner-unavailable'] }).toEqual({ relayed: 4, unavailable: 0 });

      const commit = await call(one.api, 'POST', `/v1/transactions/${id}/commit`, {});
      expect({ status: commit.status, state: commit.body.state }).toEqual({ status: 200, state: 'committed' });
    }, 60_000);

    it('an owner that holds its lease but cannot be reached: the admin call is refused with 503 owner-unavailable, nothing is decided', async () => {
      const id = await transferOnOne();
      one.process.signal('SIGKILL');
      expect((await one.process.exited(5_000)).signal).toBe('SIGKILL');

      // The lease (30 s) outlives this case: coord-2 must neither take over nor act.
      const resolve = await admin(two, 'POST', `${id}/resolve`, { outcome: 'abort' });
      expect({ status: resolve.status, code: resolve.body.code, owner: resolve.body.owner }).toEqual({ status: 503, code: 'owner-unavailable', owner: one.api });
      const retry = await admin(two, 'POST', `${id}/retry`, {});
      expect({ status: retry.status, code: retry.body.code }).toEqual({ status: 503, code: 'owner-unavailable' });
      const cli = await runCli(['resolve', id, '--abort', '--yes', '--url', two.api], { TWOPC_ADMIN_TOKEN: ADMIN_TOKEN });
      expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 7, stderr: expect.stringMatching(/owned by coordinator instance.*\[owner-unavailable\]/) });
      expect(await store().decision(id)).toBeUndefined();
      expect(two.takenOver).toEqual([]);
    }, 60_000);
  }

  describe('PostgreSQL log', () => {
    scenarios(() => postgresStore(cluster.connectionString(LOG_DB), logPool, 'admin_relay'));
  });

  describeIfRedisServer('Redis log (AOF, appendfsync always)', () => {
    let redis: RedisServer;
    let client: Redis;
    beforeAll(async () => {
      redis = await RedisServer.start({ name: 'safety-admin' });
      client = new Redis(redis.url, { maxRetriesPerRequest: 2 });
    }, 30_000);
    afterAll(async () => {
      client?.disconnect();
      await redis?.destroy();
    });
    scenarios(() => redisStore(redis.url, client, 'admin-relay'));
  });
});
