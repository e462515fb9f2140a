import { Client, Pool } from 'pg';
import { MIN_MARKER_RETENTION_MS, PostgresParticipant } from '../../participant-sdk/src/postgres';
import { PgCluster } from '../../harness/pg-cluster';
import { PREFIX, TestPool, newBranch, waitFor } from '../participants/postgres-fixture';
import { accountsTableSql } from '../../harness/bank';

/**
 * Issue 10, finding 7: marker pruning counted a marker's age from its
 * branch's BEGIN (the row's `created_at` is the branch transaction's start),
 * so a branch in doubt longer than the retention lost its marker at the first
 * prune after COMMIT PREPARED, and a retried COMMIT PREPARED (its first answer
 * lost) reported a false heuristic hazard. A marker may only go once its
 * commit is older than the retention.
 */

const DB = 'safety_marker_pruning';
// The age pruning is asked for (a retention this short is refused as a setting: the floor is 1 h,
// so each call passes it, as a call by hand may).
const RETENTION_MS = 300;
jest.setTimeout(60_000);

describe('marker pruning counts from the commit, not from the BEGIN (issue 10, finding 7)', () => {
  let cluster: PgCluster;
  let admin: Client;
  let pg: Pool;
  let pool: TestPool;
  let participant: PostgresParticipant;

  const markerCount = async (gid: string): Promise<number> => Number((await admin.query('select count(*) from twopc_marker where gid = $1', [gid])).rows[0].count);

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-markers' });
    await cluster.createDatabase(DB);
    admin = new Client(cluster.connectionConfig(DB));
    await admin.connect();
    await admin.query(accountsTableSql({ balance: 'int' }));
    await admin.query('insert into accounts values (1, 100)');
  });

  afterAll(async () => {
    await admin?.end();
    await cluster?.destroy();
  });

  beforeEach(async () => {
    pg = new Pool({ ...cluster.connectionConfig(DB), max: 4 });
    pool = new TestPool(pg);
    participant = new PostgresParticipant({ name: 'accounts', pool, markerRetentionMs: MIN_MARKER_RETENTION_MS });
    await participant.start();
  });

  afterEach(async () => {
    await participant.close();
    await pg.end();
    await cluster.assertNoPrepared(PREFIX);
  });

  it('keeps the marker of a branch in doubt longer than the retention until its commit is that old, so a retried COMMIT PREPARED is acknowledged', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = balance + 1 where id = 1');
    expect(await participant.prepare(ref)).toEqual({ vote: 'yes' });
    // In doubt for longer than the retention (its BEGIN, and the marker row's created_at, are older).
    await waitFor('the branch to be older than the retention', async () =>
      (await admin.query(`select 1 from twopc_marker where gid = $1 and clock_timestamp() - created_at > $2 * interval '1 millisecond'`, [ref.gid, RETENTION_MS])).rows.length > 0 ||
      (await admin.query(`select 1 from pg_prepared_xacts where gid = $1 and clock_timestamp() - prepared > $2 * interval '1 millisecond'`, [ref.gid, RETENTION_MS])).rows.length > 0,
    );
    // Pruning while it is prepared takes nothing of it.
    await participant.pruneMarkers(RETENTION_MS);
    // The decision is commit; the answer to COMMIT PREPARED is lost, so the coordinator will retry.
    pool.inject({ match: /^COMMIT PREPARED/, mode: 'lose-answer' });
    await expect(participant.commit(ref)).rejects.toMatchObject({ code: 'outcome-unknown' });
    expect(await markerCount(ref.gid)).toBe(1);
    // A prune between the commit and the retry must keep the marker: the commit is fresh.
    await participant.pruneMarkers(RETENTION_MS);
    expect(await markerCount(ref.gid)).toBe(1);
    // The retry is acknowledged through the marker, not reported as a heuristic hazard.
    await participant.commit(ref);
    expect((await admin.query('select balance from accounts where id = 1')).rows[0].balance).toBe(101);
    // Once the commit itself is older than the retention, the marker goes.
    await waitFor('the marker to be pruned once its commit is older than the retention', async () => {
      await participant.pruneMarkers(RETENTION_MS);
      return (await markerCount(ref.gid)) === 0;
    });
  });

  it('still prunes: one-phase markers go once their commit is older than the retention (frozen rows too), and old horizons are forgotten', async () => {
    // A horizon older than the retention, taken before the commits: it must not cover them.
    await participant.pruneMarkers(RETENTION_MS);
    await new Promise((r) => setTimeout(r, RETENTION_MS + 50));
    const refs = [newBranch('accounts'), newBranch('accounts')];
    for (const ref of refs) {
      const branch = await participant.openBranch(ref);
      await branch.query('update accounts set balance = balance + 1 where id = 1');
      await participant.commit(ref, { onePhase: true });
    }
    // Freezing keeps the row's raw xmin, which is what pruning compares (were it read as
    // FrozenTransactionId, the horizon taken before the commits would cover them).
    await admin.query('vacuum (freeze) twopc_marker');
    expect(await participant.pruneMarkers(RETENTION_MS)).toBe(0);
    expect((await markerCount(refs[0].gid)) + (await markerCount(refs[1].gid))).toBe(2);
    await waitFor('both markers to be pruned', async () => {
      await participant.pruneMarkers(RETENTION_MS);
      return (await markerCount(refs[0].gid)) + (await markerCount(refs[1].gid)) === 0;
    });
    // Horizons older than the one pruning counts from are forgotten.
    await admin.query(`insert into twopc_marker_horizon (taken_at, horizon) values (now() - interval '2 days', '1'), (now() - interval '1 day', '1')`);
    await participant.pruneMarkers(RETENTION_MS);
    expect((await admin.query(`select 1 from twopc_marker_horizon where taken_at < now() - interval '36 hours'`)).rows).toEqual([]);
  });

  it('keeps markers committed after the oldest running transaction began until that one ends', async () => {
    // A long transaction elsewhere (here: one that holds an xid) keeps the horizon back.
    const long = new Client(cluster.connectionConfig(DB));
    await long.connect();
    await long.query('begin');
    await long.query('select pg_current_xact_id()');
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = balance + 1 where id = 1');
    await participant.commit(ref, { onePhase: true });
    await participant.pruneMarkers(RETENTION_MS);
    await new Promise((r) => setTimeout(r, RETENTION_MS * 2));
    await participant.pruneMarkers(RETENTION_MS);
    // Committed more than the retention ago, but no horizon proves it yet: kept (late, never early).
    expect(await markerCount(ref.gid)).toBe(1);
    await long.query('commit');
    await long.end();
    await waitFor('the marker to be pruned once the horizon passed it', async () => {
      await participant.pruneMarkers(RETENTION_MS);
      return (await markerCount(ref.gid)) === 0;
    });
  });
});
