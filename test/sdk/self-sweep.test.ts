import type { Server } from 'node:http';
import express from 'express';
import { Pool } from 'pg';
import type { ParticipantOptions, TwopcParticipant } from '../../participant-sdk/src';
import { PgCluster } from '../../harness/pg-cluster';
import { callParticipant, closedPortUrl, closeServer, FakeCoordinator, listen, mountParticipant, PREFIX } from './sdk-fixture';
import { accountsTableSql } from '../../harness/bank';

const DB = 'sdk_sweep';
jest.setTimeout(30_000);

describe('participant SDK: self-sweep and marker pruning', () => {
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
    await participant?.close();
    if (server) await closeServer(server);
    const mounted = await mountParticipant(pg, coordinator, { mode: 'eager', sweepGraceMs: 0, ...overrides });
    ({ server, base } = mounted);
    participant = mounted.participant;
    return mounted.participant;
  }

  /** A branch prepared (eager) in a new transaction, which sets account 1's balance. */
  async function preparedBranch(p: TwopcParticipant, value: number) {
    const txId = coordinator.begin();
    await p.enlist(txId, (db) => db.query('update accounts set balance = $1 where id = 1', [value]));
    expect(await cluster.preparedGids(PREFIX)).toEqual([coordinator.branch(txId).gid]);
    return coordinator.branch(txId);
  }

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'sdk-sweep' });
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
    coordinator.getMode = 'normal';
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

  it('commits a prepared branch whose transaction the coordinator decided commit', async () => {
    const p = await setup();
    const branch = await preparedBranch(p, 21);
    coordinator.tx(branch.txId).decision = 'commit';
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, committed: 1, rolledBack: 0, left: 0 });
    expect(await balance()).toBe(21);
    // The coordinator's own commit, arriving late, is still acknowledged.
    expect(await callParticipant(base, 'POST', '/commit', branch)).toMatchObject({ status: 200 });
  });

  it('rolls back a prepared branch whose transaction the coordinator decided abort', async () => {
    const p = await setup();
    const branch = await preparedBranch(p, 22);
    coordinator.tx(branch.txId).decision = 'abort';
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, committed: 0, rolledBack: 1 });
    expect(await balance()).toBe(100);
  });

  it('leaves undecided branches, branches younger than the grace period, and a commit that does not list the branch', async () => {
    const p = await setup();
    const undecided = await preparedBranch(p, 23);
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, left: 1, coordinatorUnreachable: false });
    coordinator.tx(undecided.txId).decision = 'commit';
    coordinator.tx(undecided.txId).hideBranches = true;
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, committed: 0, left: 1 });

    const patient = await setup({ sweepGraceMs: 60_000 });
    expect(await patient.sweepOnce()).toMatchObject({ seen: 1, skipped: 1 });
    expect(await callParticipant(base, 'POST', '/rollback', undecided)).toMatchObject({ status: 200 });
  });

  it('leaves everything when the coordinator cannot be asked, and finishes on a later pass', async () => {
    const p = await setup();
    const branch = await preparedBranch(p, 24);
    coordinator.tx(branch.txId).decision = 'commit';
    coordinator.getMode = 'down';
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, left: 1, committed: 0, coordinatorUnreachable: true });
    // A 404 that is not the coordinator's own problem answer (a proxy, a wrong URL) is no answer either.
    coordinator.getMode = 'html-404';
    expect(await p.sweepOnce()).toMatchObject({ left: 1, coordinatorUnreachable: true });
    expect(await cluster.preparedGids(PREFIX)).toEqual([branch.gid]);
    coordinator.getMode = 'normal';
    expect(await p.sweepOnce()).toMatchObject({ committed: 1 });
    expect(await balance()).toBe(24);
  });

  it('leaves a coordinator that is not listening at all', async () => {
    const p = await setup({ coordinatorUrl: 'http://127.0.0.1:9' });
    // Enlisting needs the coordinator: prepare a branch through another participant sharing the database.
    const other = await mountParticipant(pg, coordinator, { mode: 'eager' });
    const txId = coordinator.begin();
    await other.participant.enlist(txId, (db) => db.query('update accounts set balance = 25 where id = 1'));
    await other.participant.close();
    await closeServer(other.server);
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, left: 1, coordinatorUnreachable: true });
    expect(await callParticipant(base, 'POST', '/rollback', coordinator.branch(txId))).toMatchObject({ status: 200 });
  });

  it('enlists and sweeps through the next coordinator URL when the first does not listen', async () => {
    const p = await setup({ coordinatorUrl: undefined, coordinatorUrls: [await closedPortUrl(), coordinator.url] });
    const branch = await preparedBranch(p, 29);
    coordinator.tx(branch.txId).decision = 'commit';
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, committed: 1, coordinatorUnreachable: false });
    expect(await balance()).toBe(29);
  });

  it('asks the next coordinator URL when the first cannot reach the transaction\'s owner (503 owner-unavailable)', async () => {
    const relayed: string[] = [];
    const app = express();
    app.use((req, res) => {
      relayed.push(`${req.method} ${req.path}`);
      res.status(503).type('application/problem+json').set('retry-after', '30').send(JSON.stringify({ type: 'x', title: 'x', status: 503, code: 'owner-unavailable' }));
    });
    const relay = await listen(app);
    try {
      const p = await setup({ coordinatorUrl: undefined, coordinatorUrls: [relay.url, coordinator.url] });
      // Prepared through another participant sharing the database, so that p's client still starts at the relay.
      const other = await mountParticipant(pg, coordinator, { mode: 'eager' });
      const txId = coordinator.begin();
      await other.participant.enlist(txId, (db) => db.query('update accounts set balance = 30 where id = 1'));
      await other.participant.close();
      await closeServer(other.server);
      coordinator.tx(txId).decision = 'commit';
      expect(await p.sweepOnce()).toMatchObject({ seen: 1, committed: 1, coordinatorUnreachable: false });
      expect(relayed).toEqual([`GET /v1/transactions/${txId}`]);
      expect(await balance()).toBe(30);
    } finally {
      await closeServer(relay.server);
    }
  });

  it('presumes abort for a transaction the coordinator does not know only once branch and transaction are old enough', async () => {
    const p = await setup();
    const branch = await preparedBranch(p, 26);
    coordinator.txs.delete(branch.txId);
    expect(await p.sweepOnce()).toMatchObject({ seen: 1, left: 1, rolledBack: 0 });
    const hasty = await setup({ presumeAbortAfterMs: 1 });
    expect(await hasty.sweepOnce()).toMatchObject({ seen: 1, rolledBack: 1 });
    expect(await balance()).toBe(100);
  });

  it('runs on its interval once started', async () => {
    const p = await setup({ sweepIntervalMs: 50 });
    const branch = await preparedBranch(p, 27);
    coordinator.tx(branch.txId).decision = 'commit';
    const deadline = Date.now() + 5_000;
    while ((await cluster.preparedGids(PREFIX)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(await balance()).toBe(27);
  });

  it('prunes markers older than the retention', async () => {
    const p = await setup({ mode: 'held' });
    const txId = coordinator.begin();
    await sql('delete from twopc_marker');
    await p.enlist(txId, (db) => db.query('update accounts set balance = 28 where id = 1'));
    expect(await callParticipant(base, 'POST', '/commit', { ...coordinator.branch(txId), onePhase: true })).toMatchObject({ status: 200 });
    expect(await sql('select gid from twopc_marker')).toEqual([{ gid: coordinator.branch(txId).gid }]);
    expect(await p.pruneMarkers(60_000)).toBe(0);
    expect(await p.pruneMarkers(0)).toBe(1);
    expect(await sql('select gid from twopc_marker')).toEqual([]);
  });
});
