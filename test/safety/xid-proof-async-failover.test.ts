import { Pool } from 'pg';
import { isTwopcError } from '../../coordinator/engine/ports/protocol';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';
import { newBranch } from '../participants/postgres-fixture';

/**
 * Review F1 (commitProof xid), the interleaving itself: participant P has an
 * asynchronous standby; a branch votes yes with xid X, is committed on the old
 * primary, and the answer is lost; P fails over to the standby, which never got
 * the PREPARE; the new primary assigns X to an unrelated transaction that
 * commits. The retried COMMIT PREPARED finds nothing (42704) and
 * pg_xact_status(X) says committed: without the cluster history in the proof,
 * the branch was acknowledged although its writes are gone. The standby has
 * the same system identifier; its promotion starts a new timeline.
 */

const DB = 'xid_failover';

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('commitProof xid across a failover to an asynchronous standby', () => {
  let primary: PgCluster;
  let standby: PgCluster;
  const pools: Pool[] = [];

  beforeAll(async () => {
    primary = await PgCluster.start({ name: 'xid-failover-primary', settings: { wal_keep_size: '256MB' } });
    await primary.createDatabase(DB);
    await primary.withClient((c) => c.query('create table items (id int primary key)'), DB);
    standby = await PgCluster.standbyOf(primary, 'standby1');
    await waitFor('the standby to stream', async () => (await primary.withClient((c) => c.query("select 1 from pg_stat_replication where state = 'streaming'"))).rows.length === 1);
  });

  afterAll(async () => {
    for (const pool of pools) await pool.end().catch(() => undefined);
    await standby?.destroy();
    await primary?.destroy();
  });

  const participantOn = (cluster: PgCluster) => {
    const pool = new Pool({ ...cluster.connectionConfig(DB), max: 2 });
    // Idle connections die with their server here: expected.
    pool.on('error', () => undefined);
    pools.push(pool);
    return new PostgresParticipant({ name: 'items', pool });
  };

  it('a retried COMMIT PREPARED on the promoted standby is a heuristic hazard, not the new primary\'s unrelated transaction', async () => {
    // The standby falls behind (asynchronous: nothing waits for it) and never gets the branch.
    await standby.stop();
    const onPrimary = participantOn(primary);
    await onPrimary.start();
    const ref = newBranch('items');
    const branch = await onPrimary.openBranch(ref);
    await branch.query('insert into items values (1)');
    const vote = await onPrimary.prepare(ref);
    if (vote.vote !== 'yes' || !('xid' in vote) || vote.xid === undefined) throw new Error(`expected a yes with a proof, got ${JSON.stringify(vote)}`);
    const proven = { ...ref, xid: vote.xid };
    // Its COMMIT PREPARED runs on the old primary; the answer is lost with it.
    await onPrimary.commit(proven);
    await onPrimary.close();
    await primary.stop();

    await standby.startServer();
    await standby.withClient((c) => c.query('select pg_promote()'));
    await waitFor('the promotion', async () => (await standby.withClient((c) => c.query('select pg_is_in_recovery() as r'))).rows[0].r === false);
    // The new primary hands the branch's xid to unrelated transactions that commit.
    const xid = BigInt(vote.xid.slice(vote.xid.lastIndexOf(':') + 1));
    await standby.withClient(async (c) => {
      while (BigInt((await c.query('select pg_current_xact_id()::text as x')).rows[0].x) < xid);
      expect((await c.query('select pg_xact_status($1::text::xid8) as s', [xid.toString()])).rows[0].s).toBe('committed');
      expect((await c.query('select count(*)::int as n from items')).rows[0].n).toBe(0);
    }, DB);

    // The retry, on the database the participant's address now reaches.
    const onPromoted = participantOn(standby);
    await onPromoted.start();
    const err = await onPromoted.commit(proven).catch((e: unknown) => e);
    expect(isTwopcError(err) && err.code).toBe('heuristic-hazard');
    expect(String((err as Error).message)).toMatch(/not the history that prepared it \(cluster [0-9]+\.1, now [0-9]+\.2/);
    expect(await onPromoted.recordedState(proven)).toBe('unknown');
    await onPromoted.close();
  });
});
