import type { Server } from 'node:http';
import { Pool } from 'pg';
import type { ParticipantOptions, TwopcParticipant } from '../../participant-sdk/src';
import { PgCluster } from '../../harness/pg-cluster';
import { callParticipant, closeServer, FakeCoordinator, mountParticipant, PREFIX } from '../sdk/sdk-fixture';
import { accountsTableSql } from '../../harness/bank';

/**
 * Issue 10, finding 6: the SDK could answer yes for a branch it had rolled
 * back. The self-sweep rolled prepared branches back beside the branch book,
 * so a later prepare was answered from the recorded yes vote; and a yes was
 * repeated from memory even when the branch was no longer prepared (rolled
 * back by another replica behind the same publicUrl, an operator, or
 * `twopc orphans --rollback` on the database). A yes for a rolled-back branch
 * lets its transaction commit everywhere else.
 */

const DB = 'safety_sdk_votes';
jest.setTimeout(30_000);

describe('the SDK never answers yes for a branch that is rolled back (issue 10, finding 6)', () => {
  let cluster: PgCluster;
  let coordinator: FakeCoordinator;
  let pg: Pool;
  let server: Server | undefined;
  let base: string;
  let participant: TwopcParticipant | undefined;

  const sql = async <R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]> =>
    cluster.withClient(async (c) => (await c.query<R>(text, values)).rows, DB);
  const balance = async (): Promise<number> => (await sql<{ balance: number }>('select balance from accounts where id = 1'))[0].balance;

  async function setup(overrides: Partial<ParticipantOptions> = {}): Promise<TwopcParticipant> {
    const mounted = await mountParticipant(pg, coordinator, { mode: 'eager', sweepGraceMs: 0, ...overrides });
    ({ server, base } = mounted);
    participant = mounted.participant;
    return mounted.participant;
  }

  /** An eager branch of a new transaction: prepared, its yes vote in the branch book. */
  async function preparedBranch(p: TwopcParticipant, value: number) {
    const txId = coordinator.begin();
    await p.enlist(txId, (db) => db.query('update accounts set balance = $1 where id = 1', [value]));
    expect(await cluster.preparedGids(PREFIX)).toEqual([coordinator.branch(txId).gid]);
    return coordinator.branch(txId);
  }

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-sdk-votes' });
    await cluster.createDatabase(DB);
    await sql(accountsTableSql({ balance: 'int' }));
    coordinator = new FakeCoordinator();
    await coordinator.start();
  });

  afterAll(async () => {
    await coordinator?.stop();
    await cluster?.destroy();
  });

  beforeEach(async () => {
    await sql('truncate accounts');
    await sql('insert into accounts values (1, 100)');
    pg = new Pool({ ...cluster.connectionConfig(DB), max: 4 });
  });

  afterEach(async () => {
    await participant?.close();
    participant = undefined;
    if (server) await closeServer(server);
    server = undefined;
    await pg.end();
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await sql(`rollback prepared '${gid}'`);
    expect(left).toEqual([]);
  });

  it('after the self-sweep presumed a branch aborted and rolled it back, a late prepare gets no and a late one-phase commit rolled-back', async () => {
    const p = await setup({ presumeAbortAfterMs: 1 });
    const branch = await preparedBranch(p, 7);
    // The coordinator does not know the transaction (not-found), and it is old enough: presumed abort.
    coordinator.txs.delete(branch.txId);
    await new Promise((r) => setTimeout(r, 5));
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, rolledBack: 1 });
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
    // A coordinator that still runs the transaction asks for the vote: it must not be yes.
    const vote = await callParticipant(base, 'POST', '/prepare', branch);
    expect(vote).toMatchObject({ status: 409, body: { vote: 'no' } });
    const onePhase = await callParticipant(base, 'POST', '/commit', { ...branch, onePhase: true });
    expect(onePhase).toMatchObject({ status: 409, body: { state: 'rolled-back' } });
    expect(await callParticipant(base, 'GET', `/branches/${branch.gid}`)).toMatchObject({ status: 200, body: { state: 'unknown' } });
    expect(await balance()).toBe(100);
  });

  it('after the self-sweep rolled back a branch of an aborted transaction, a repeated prepare gets no', async () => {
    const p = await setup();
    const branch = await preparedBranch(p, 8);
    coordinator.tx(branch.txId).decision = 'abort';
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, rolledBack: 1 });
    expect(await callParticipant(base, 'POST', '/prepare', branch)).toMatchObject({ status: 409, body: { vote: 'no' } });
    expect(await balance()).toBe(100);
  });

  it('re-checks pg_prepared_xacts before repeating a yes: a branch rolled back behind its back gets no', async () => {
    await setup();
    const branch = await preparedBranch(participant!, 9);
    // Still prepared: the yes is repeated.
    expect(await callParticipant(base, 'POST', '/prepare', branch)).toMatchObject({ status: 200, body: { vote: 'yes' } });
    // Another replica, an operator or `twopc orphans --rollback` ends it on the database.
    await sql(`rollback prepared '${branch.gid}'`);
    expect(await callParticipant(base, 'POST', '/prepare', branch)).toMatchObject({ status: 409, body: { vote: 'no' } });
    expect(await balance()).toBe(100);
  });

  it('a branch committed elsewhere (its marker is visible) still gets its yes and its commit acknowledged', async () => {
    await setup();
    const branch = await preparedBranch(participant!, 10);
    await sql(`commit prepared '${branch.gid}'`);
    expect(await callParticipant(base, 'POST', '/prepare', branch)).toMatchObject({ status: 200, body: { vote: 'yes' } });
    expect(await callParticipant(base, 'POST', '/commit', branch)).toMatchObject({ status: 200, body: { state: 'committed' } });
    expect(await balance()).toBe(10);
  });
});
