import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { Pool } from 'pg';
import type { TsProcess } from '../e2e/processes';
import { PgCluster } from '../../harness/pg-cluster';
import { describeIfRedisServer, RedisServer } from '../../harness/redis-server';
import { ClusterOutcomes, newClusterOutcomes, runClusterTraffic } from './cluster-traffic';
import { AdminClient } from '../../coordinator/cli/admin-client';
import { ADMIN_TOKEN, API_TOKEN, CoordinatorInstance, startCoordinatorPair } from './coordinator-pair';
import { ACCOUNTS, CONSISTENT, createLedger, ledgerVerdict, startLedgerService } from './ledgers';
import { postgresStoreView, redisStoreView, StoreView } from './store-view';
import { SwitchProxy } from './switch-proxy';

/**
 * Issue 6 / SPEC §7, §9: two `twopc serve` processes share one decision log
 * (PostgreSQL, or Redis with AOF `appendfsync always`), each owning the
 * transactions it begins under a lease. Bank clients begin each transfer on
 * one instance and commit it on either, and the ledger services enlist
 * through different instances, so requests for transactions owned elsewhere
 * are relayed to the owner. Then one instance is SIGKILLed (or paused past
 * its lease and resumed: it must find itself fenced and rejoin). The other
 * takes its lease over and finishes its transactions. After quiescence:
 * every transfer in both ledgers or neither, nothing prepared or in doubt,
 * every acknowledged commit visible, every acknowledged abort not, money
 * conserved.
 *
 * Ledger service A talks to instance 1 and B to instance 2, each through a
 * switch (a load balancer's health check, in effect) that moves it to the
 * surviving instance while instance 1 is dead or paused.
 *
 * TWOPC_MULTI_DUMP=<dir> writes each instance's whole log there and prints
 * each scenario's traffic summary.
 */

const LOG_DB = 'twopc_log';

/** A log without the periodic recovery passes that found nothing to do (one every sweep while traffic runs). */
function withoutIdlePasses(log: string): string {
  return log
    .split('\n')
    .filter((l) => !(l.includes('"msg":"recovery pass done"') && l.includes('"resumedCommit":0,"resumedAbort":0,"decidedAbort":0,"decidedCommit":0')))
    .join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('several twopc serve instances on one shared decision log', () => {
  let cluster: PgCluster;
  let dir: string;
  const pools = {} as { a: Pool; b: Pool };
  let logPool: Pool;
  const proxies = {} as { a: SwitchProxy; b: SwitchProxy };
  const services: TsProcess[] = [];
  let serviceUrls: { a: string; b: string };
  const started: CoordinatorInstance[] = [];
  /** Every scenario's outcomes: the ledgers hold the transfers of all of them. */
  const scenarios: ClusterOutcomes[] = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'multi-instance', maxPreparedTransactions: 50 });
    await Promise.all([createLedger(cluster, 'ledger_a'), createLedger(cluster, 'ledger_b'), cluster.createDatabase(LOG_DB)]);
    pools.a = new Pool({ ...cluster.connectionConfig('ledger_a'), max: 2 });
    pools.b = new Pool({ ...cluster.connectionConfig('ledger_b'), max: 2 });
    logPool = new Pool({ ...cluster.connectionConfig(LOG_DB), max: 2 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-multi-instance-'));
    // Pointed at the instances of each scenario as it starts; nothing listens there yet.
    [proxies.a, proxies.b] = await Promise.all([SwitchProxy.start(1), SwitchProxy.start(1)]);
    // Each service knows both instances (its own first): the SDK fails over when one stops answering.
    const [a, b] = await Promise.all([
      startLedgerService(cluster, 'ledger_a', `${proxies.a.url},${proxies.b.url}`),
      startLedgerService(cluster, 'ledger_b', `${proxies.b.url},${proxies.a.url}`),
    ]);
    services.push(a.proc, b.proc);
    serviceUrls = { a: a.url, b: b.url };
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(started.map((i) => i.stop()));
    await Promise.allSettled(services.map((s) => s.stop()));
    await Promise.allSettled([proxies.a?.close(), proxies.b?.close()]);
    await Promise.allSettled([pools.a?.end(), pools.b?.end(), logPool?.end()]);
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** TWOPC_MULTI_DUMP=<dir>: the instances' whole logs are written there (on every scenario's end). */
  function dump(instances: CoordinatorInstance[]): void {
    const to = process.env.TWOPC_MULTI_DUMP;
    if (to) for (const i of instances) fs.writeFileSync(path.join(to, `${i.name}-${i.port}.log`), i.process.log);
  }

  function diagnostics(instances: CoordinatorInstance[]): string {
    dump(instances);
    const tails = instances.map((i) => `--- ${i.name}:\n${withoutIdlePasses(i.process.log).slice(-6000)}`);
    return [...tails, ...services.map((s) => `--- ${s.label}:\n${s.log.slice(-1500)}`)].join('\n');
  }

  async function waitFor(what: string, check: () => boolean | Promise<boolean>, instances: CoordinatorInstance[], timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${diagnostics(instances)}`);
      await sleep(100);
    }
  }

  /** Every branch ended, nothing in doubt or unfinished at any live instance (and in the log table, when given). */
  async function quiescence(live: CoordinatorInstance[], everyone: CoordinatorInstance[], store: StoreView): Promise<void> {
    await waitFor('no prepared transaction of ours', async () => (await cluster.preparedGids('twopc')).length === 0, everyone, 30_000);
    for (const instance of live) {
      await waitFor(`nothing in doubt or unfinished at ${instance.name}`, async () => (await instance.list('in-doubt')).length === 0 && (await instance.list()).length === 0, everyone);
    }
    await waitFor('no unfinished transaction in the shared log', async () => (await store.unfinished()) === 0, everyone);
  }

  /** All scenarios' outcomes together, for the ledgers' verdict. */
  function allOutcomes(): ClusterOutcomes {
    const all = newClusterOutcomes();
    for (const o of scenarios) {
      for (const [id, kind] of o.kinds) all.kinds.set(id, kind);
      for (const id of o.committed) all.committed.add(id);
      for (const id of o.aborted) all.aborted.add(id);
    }
    return all;
  }

  const summary = (out: ClusterOutcomes) => ({
    begun: out.kinds.size,
    committed: out.committed.size,
    aborted: out.aborted.size,
    unknown: out.unknown.size,
    relayedCommits: relayedCommits(out),
    odd: Object.fromEntries(out.odd),
    retried: Object.fromEntries(out.retried),
  });
  const relayedCommits = (out: ClusterOutcomes, before = Infinity) => out.commits.filter((c) => c.answeredBy !== c.begunOn && c.at < before).length;
  const openOn = (out: ClusterOutcomes, api: string) => [...out.open].filter((id) => out.begunOn.get(id) === api);

  interface Scenario {
    log: string;
    allowVolatile: boolean;
    seed: number;
    /** Reads the shared store itself, not through an instance. */
    store: StoreView;
  }

  /** Starts the pair and the traffic; resolves once instance 1 has transactions of its own in flight and commits were relayed. */
  async function startWithTraffic(s: Scenario) {
    const [one, two] = await startCoordinatorPair({ dir, log: s.log, allowVolatile: s.allowVolatile, ledgers: cluster });
    started.push(one, two);
    await proxies.a.resume(one.port);
    await proxies.b.resume(two.port);
    const out = newClusterOutcomes();
    scenarios.push(out);
    const state = { live: [one.api, two.api], stop: false };
    const traffic = runClusterTraffic({
      instances: () => state.live,
      token: API_TOKEN,
      services: serviceUrls,
      accounts: ACCOUNTS,
      workers: 6,
      seed: s.seed,
      outcomes: out,
      stopped: () => state.stop,
    });
    traffic.catch(() => undefined);
    const since = Date.now();
    try {
      await waitFor(
        'traffic through both instances, with transactions of coord-1 in flight',
        () => Date.now() - since > 2_500 && relayedCommits(out) >= 3 && out.commits.some((c) => c.begunOn === one.api) && openOn(out, one.api).length > 0,
        [one, two],
      );
    } catch (e) {
      state.stop = true;
      await traffic;
      throw e;
    }
    return { one, two, out, state, traffic };
  }

  async function finishTraffic(state: { stop: boolean }, traffic: Promise<number>): Promise<void> {
    state.stop = true;
    await traffic;
  }

  async function verdict(out: ClusterOutcomes) {
    if (process.env.TWOPC_MULTI_DUMP) console.log(JSON.stringify(summary(out)));
    return { ...(await ledgerVerdict(pools, allOutcomes())), odd: Object.fromEntries(out.odd) };
  }

  async function sigkillScenario(s: Scenario): Promise<void> {
    const { one, two, out, state, traffic } = await startWithTraffic(s);
    try {
      const killedAt = Date.now();
      const openAtKill = openOn(out, one.api);
      const ownCommitsBeforeKill = out.commits.filter((c) => c.begunOn === one.api).length;
      const relayedBeforeKill = relayedCommits(out, killedAt);
      one.process.signal('SIGKILL');
      state.live = [two.api];
      // ledger_a's first coordinator URL now refuses connections, as a dead instance's address does: its SDK fails over to coord-2 by itself.
      await proxies.a.refuse();
      expect((await one.process.exited(5_000)).signal).toBe('SIGKILL');

      await waitFor("coord-2 taking over coord-1's expired lease", async () => (await s.store.takenOverBy(one.tokens[0])) === two.tokens[0], [one, two]);
      const tookOverAt = Date.now();
      if (process.env.TWOPC_MULTI_TIMING) process.stdout.write(`takeover observed ${tookOverAt - killedAt} ms after the kill (lease 2000 ms)\n`);
      // What an operator sees (`twopc instances --url`): coord-1's lease taken over by coord-2, coord-2 answering.
      const admin = new AdminClient({ url: two.api, token: ADMIN_TOKEN });
      const instances = await admin.instances();
      await admin.close();
      expect({ self: instances.self, dead: instances.instances.find((i) => i.token === one.tokens[0]) }).toMatchObject({
        self: two.tokens[0],
        dead: { name: 'coord-1', state: 'taken-over', takenOverBy: two.tokens[0] },
      });
      // Traffic goes on against coord-2 alone, through its takeover.
      await waitFor('commits at coord-2 after the takeover', () => Date.now() - killedAt > 4_000 && out.commits.filter((c) => c.at > tookOverAt).length >= 3, [one, two]);
      // ledger_a enlisted through its SDK's second URL: transfers touching it committed after the kill.
      const touchesA = (id: string) => ['cross', 'local-a'].includes(out.kinds.get(id) ?? '');
      await waitFor('a ledger_a transfer committed after the kill', () => out.commits.some((c) => c.at > killedAt && c.begunOn === two.api && touchesA(c.id)), [one, two]);
      await finishTraffic(state, traffic);
      await quiescence([two], [one, two], s.store);

      expect(await verdict(out)).toEqual({ ...CONSISTENT, odd: {} });
      expect(await cluster.preparedGids('twopc')).toEqual([]);
      // coord-1 owned work when it died: it had committed transactions of its own, had some in flight, and commits were relayed to it.
      expect({ ownCommitsBeforeKill: ownCommitsBeforeKill > 0, openAtKill: openAtKill.length > 0, relayedBeforeKill: relayedBeforeKill > 0 }).toEqual({
        ownCommitsBeforeKill: true,
        openAtKill: true,
        relayedBeforeKill: true,
      });
      // coord-2 finished them: each client retrying its commit or abort got an outcome (its owner's decision, or presumed abort).
      expect(openAtKill.filter((id) => !out.committed.has(id) && !out.aborted.has(id))).toEqual([]);
      // Operators learn of the takeover from coord-2's log.
      expect({ takenOverPerLog: two.takenOver }).toEqual({ takenOverPerLog: [one.tokens[0]] });
    } finally {
      state.stop = true;
      await traffic;
      await two.stop();
      dump([one, two]);
    }
  }

  async function pauseScenario(s: Scenario): Promise<void> {
    const { one, two, out, state, traffic } = await startWithTraffic(s);
    try {
      const firstToken = one.tokens[0];
      one.process.signal('SIGSTOP');
      state.live = [two.api];
      proxies.a.retarget(two.port);
      await waitFor("coord-2 taking over paused coord-1's lease", async () => (await s.store.takenOverBy(firstToken)) === two.tokens[0], [one, two]);
      one.process.signal('SIGCONT');

      const fenced = () => one.logLines('lease ').filter((l) => String(l.msg).includes('fenced'));
      await waitFor('coord-1 fenced, registered again and ready', async () => fenced().length > 0 && one.tokens.length >= 2 && (await one.readyz()) === 200, [one, two]);
      const resumedAt = Date.now();
      state.live = [one.api, two.api];
      proxies.a.retarget(one.port);
      // The rejoined instance owns new work and relays again.
      await waitFor(
        'commits of transactions begun on the rejoined coord-1, and relayed ones',
        () =>
          Date.now() - resumedAt > 2_000 &&
          out.commits.filter((c) => c.at > resumedAt && c.begunOn === one.api).length >= 3 &&
          out.commits.filter((c) => c.at > resumedAt && c.answeredBy !== c.begunOn).length >= 3,
        [one, two],
      );
      await finishTraffic(state, traffic);
      await quiescence([one, two], [one, two], s.store);

      expect(await verdict(out)).toEqual({ ...CONSISTENT, odd: {} });
      expect(await cluster.preparedGids('twopc')).toEqual([]);
      expect(one.tokens[1]).toBeGreaterThan(two.tokens[0]);
      expect(one.process.running).toBe(true);
      expect({ takenOverPerLog: two.takenOver }).toEqual({ takenOverPerLog: [firstToken] });
    } finally {
      state.stop = true;
      await traffic;
      await Promise.allSettled([one.stop(), two.stop()]);
      dump([one, two]);
    }
  }

  function postgresScenario(schema: string, seed: number): Scenario {
    return { log: `${cluster.connectionString(LOG_DB)}?schema=${schema}`, allowVolatile: true, seed, store: postgresStoreView(logPool, schema) };
  }

  it('PostgreSQL log: SIGKILL one of two instances under traffic; the other finishes its transactions', async () => {
    await sigkillScenario(postgresScenario('log_kill', 1));
  }, 90_000);

  it('PostgreSQL log: an instance paused past its lease is fenced, registers again and serves', async () => {
    await pauseScenario(postgresScenario('log_pause', 2));
  }, 90_000);

  describeIfRedisServer('on Redis (AOF, appendfsync always)', () => {
    let redis: RedisServer;
    let redisClient: Redis;

    beforeAll(async () => {
      redis = await RedisServer.start({ name: 'multi-instance' });
      redisClient = new Redis(redis.url, { maxRetriesPerRequest: 2 });
    }, 30_000);

    afterAll(async () => {
      redisClient?.disconnect();
      await redis?.destroy();
    });

    it('Redis log: SIGKILL one of two instances under traffic; the other finishes its transactions', async () => {
      await sigkillScenario({ log: `${redis.url}?namespace=kill`, allowVolatile: false, seed: 3, store: redisStoreView(redisClient, 'kill') });
    }, 90_000);

    it('Redis log: an instance paused past its lease is fenced, registers again and serves', async () => {
      await pauseScenario({ log: `${redis.url}?namespace=pause`, allowVolatile: false, seed: 4, store: redisStoreView(redisClient, 'pause') });
    }, 90_000);
  });
});
