import { freePort } from '../../coordinator/demo/free-port';
import { withTransaction } from '../../participant-sdk/src';
import { PgCluster } from '../../harness/pg-cluster';
import { TsProcess } from '../e2e/processes';
import { API_TOKEN, SECRET, startTestService, waitFor, type TestService } from '../service/service-fixture';
import { balances, balancesAfter, bankState, createBank } from './bank-db';
import { generatePrismaClient } from './prisma-client';
import { ORMS } from './recipes';

/**
 * Issue 15: a participant service's work written with each ORM (the recipes
 * of test/orm/recipes, as the SDK README shows them), through the SDK's
 * `enlist`, on real PostgreSQL. Two services (two databases) per ORM, each
 * its own process, under a real coordinator service: a transfer commits in
 * both; a CHECK violation inside one service's work makes it vote no and
 * the transfer aborts in both; a service SIGKILLed while its branch is
 * prepared and the commit decided is committed once it is back.
 */
let cluster: PgCluster;
let coordinator: TestService;

beforeAll(async () => {
  generatePrismaClient();
  cluster = await PgCluster.start({ name: 'orm-sdk', maxPreparedTransactions: 10 });
  coordinator = await startTestService();
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
  await cluster?.destroy();
});

describe.each(ORMS.map((orm) => [orm]))('%s through the SDK: a participant service writes its branch with it', (orm) => {
  const services: Record<'a' | 'b', { db: string; port: number; proc: TsProcess }> = {} as never;

  beforeAll(async () => {
    for (const side of ['a', 'b'] as const) {
      const db = `${orm}_${side}`;
      await createBank(cluster, db);
      const port = await freePort();
      const proc = new TsProcess(db, 'test/orm/workers/orm-service.ts', [], {
        ORM: orm,
        NAME: db,
        PORT: String(port),
        DATABASE_URL: cluster.connectionString(db),
        COORDINATOR_URL: coordinator.base,
        TWOPC_API_TOKEN: API_TOKEN,
        TWOPC_PARTICIPANT_SECRET: SECRET,
        POOL_SIZE: '4',
      });
      services[side] = { db, port, proc };
    }
    await Promise.all(Object.values(services).map((s) => s.proc.start(/"ready":true/)));
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(Object.values(services).map((s) => s.proc.stop()));
  });

  afterEach(async () => {
    await cluster.assertNoPrepared('twopc');
  });

  async function begin(): Promise<string> {
    const begun = await coordinator.call('POST', '/v1/transactions', { timeoutMs: 60_000 });
    expect(begun.status).toBe(201);
    return begun.body.id as string;
  }

  async function bookAt(side: 'a' | 'b', txId: string, account: number, delta: number): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://127.0.0.1:${services[side].port}/book`, {
      method: 'POST',
      headers: withTransaction(txId, { 'content-type': 'application/json' }),
      body: JSON.stringify({ account, delta }),
    });
    return { status: res.status, body: await res.text() };
  }

  const state = (side: 'a' | 'b', txId: string) => bankState(cluster, services[side].db, txId);

  it('commits a transfer in both databases', async () => {
    const txId = await begin();
    const [a0, b0] = await Promise.all([balances(cluster, services.a.db), balances(cluster, services.b.db)]);
    expect(await bookAt('a', txId, 1, -30)).toEqual({ status: 200, body: '{"ok":true}' });
    expect(await bookAt('b', txId, 2, 30)).toEqual({ status: 200, body: '{"ok":true}' });
    const commit = await coordinator.call('POST', `/v1/transactions/${txId}/commit`);
    expect([commit.status, commit.body.state]).toEqual([200, 'committed']);
    expect(await state('a', txId)).toEqual({ balances: balancesAfter({ 1: -30 }, a0), entries: ['1:-30'] });
    expect(await state('b', txId)).toEqual({ balances: balancesAfter({ 2: 30 }, b0), entries: ['2:30'] });
  });

  it('a CHECK violation inside the work votes no: the transfer aborts in both databases', async () => {
    const txId = await begin();
    const [a0, b0] = await Promise.all([balances(cluster, services.a.db), balances(cluster, services.b.db)]);
    expect((await bookAt('b', txId, 2, 1_000)).status).toBe(200);
    expect((await bookAt('a', txId, 1, -1_000)).status).toBeGreaterThanOrEqual(400);
    const commit = await coordinator.call('POST', `/v1/transactions/${txId}/commit`);
    expect([commit.status, commit.body.state, commit.body.reason?.cause, commit.body.reason?.participant]).toEqual([409, 'aborted', 'vote-no', services.a.db]);
    // The reason names the constraint, whatever the ORM wrapped pg's error in.
    expect(commit.body.reason.message).toMatch(/violates check constraint "accounts_balance_check"/);
    expect(await state('a', txId)).toEqual({ balances: a0, entries: [] });
    expect(await state('b', txId)).toEqual({ balances: b0, entries: [] });
  });

  it('a service SIGKILLed with its branch prepared and the commit decided commits it once back', async () => {
    const txId = await begin();
    const [a0, b0] = await Promise.all([balances(cluster, services.a.db), balances(cluster, services.b.db)]);
    expect((await bookAt('a', txId, 3, -40)).status).toBe(200);
    expect((await bookAt('b', txId, 4, 40)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${services.a.port}/test/hang-commits`, { method: 'POST' })).status).toBe(200);

    const commit = coordinator.call('POST', `/v1/transactions/${txId}/commit`);
    await waitFor('the commit call at service a', () => services.a.proc.log.includes('"event":"commit-arrived"'), 30_000);
    await services.a.proc.stop('SIGKILL');
    // Between PREPARE and commit: a's branch is prepared in its database, with nobody holding it.
    const prepared = await cluster.withClient((c) => c.query<{ database: string }>('select database from pg_prepared_xacts'));
    expect(prepared.rows.map((r) => r.database)).toContain(services.a.db);
    const answer = await commit;
    expect([answer.status, answer.body.state, answer.body.phaseTwoPending]).toEqual([202, 'committed', true]);
    expect(await balances(cluster, services.a.db)).toEqual(a0);

    await services.a.proc.start(/"ready":true/);
    await waitFor('no prepared branch left', async () => (await cluster.preparedGids('twopc')).length === 0, 30_000);
    expect(await state('a', txId)).toEqual({ balances: balancesAfter({ 3: -40 }, a0), entries: ['3:-40'] });
    expect(await state('b', txId)).toEqual({ balances: balancesAfter({ 4: 40 }, b0), entries: ['4:40'] });
    await waitFor('the transaction completed at the coordinator', async () => (await coordinator.call('GET', `/v1/transactions/${txId}`)).body.state === 'completed', 30_000);
  });
});
