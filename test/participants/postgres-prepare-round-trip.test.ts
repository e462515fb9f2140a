import { Client, Pool } from 'pg';
import type { PoolClient } from 'pg';
import { isTwopcError } from '../../coordinator/engine/ports/protocol';
import type { PostgresPool, PostgresPoolClient } from '../../participant-sdk/src/postgres/postgres-pool';
import { PostgresParticipant } from '../../participant-sdk/src/postgres/postgres-participant';
import { CLUSTER_HISTORY } from '../../participant-sdk/src/postgres/xid-proof-sql';
import { PgCluster } from '../../harness/pg-cluster';
import { accountsTableSql } from '../../harness/bank';
import { PREFIX, TestPool, newBranch, waitFor } from './postgres-fixture';

const DB = 'prepare_round_trip';
const READS_CONTROL_FILE = /\(SELECT system_identifier FROM pg_control_system\(\)\)::text AS system/;
const CHECKS_POSTMASTER = /CASE WHEN pg_postmaster_start_time\(\) = '[^']+'::timestamptz THEN NULL/;

async function historyOf(cluster: PgCluster): Promise<string> {
  return cluster.withClient(async (c) => (await c.query<{ h: string }>(`select ${CLUSTER_HISTORY} as h`)).rows[0].h, DB);
}

/**
 * One connection object for the adapter, routed at each checkout to the pool
 * `target()` names: what a transaction-mode pooler (or a custom PostgresPool)
 * repointed at another server looks like from here. Records every statement.
 */
function routedPool(target: () => Pool): PostgresPool & { statements: string[] } {
  const held: { client?: PoolClient } = {};
  const statements: string[] = [];
  const now = (): PoolClient => held.client ?? (() => { throw new Error('not checked out'); })();
  const routed: PostgresPoolClient = {
    query: (text, values) => {
      statements.push(typeof text === 'string' ? text : text.text);
      return now().query(text as string, values as unknown[]);
    },
    release: (err) => now().release(err),
    on: () => undefined,
    removeListener: () => undefined,
    getTransactionStatus: () => now().getTransactionStatus(),
  };
  return {
    statements,
    connect: async () => {
      held.client = await target().connect();
      return routed;
    },
  };
}

/**
 * Issue 12, the PostgreSQL side of the adapter's PREPARE round trip: the
 * system identifier is read once per connection (the timeline every time),
 * and the in-block guard is left out when the connection's transaction status
 * vouches for the block. The proof and the votes must not change.
 */
describe('the PREPARE round trip on PostgreSQL', () => {
  let cluster: PgCluster;
  let other: PgCluster;
  let admin: Client;
  const pgs: Pool[] = [];
  const participants: PostgresParticipant[] = [];

  const pgPool = (target = cluster, max = 1): Pool => {
    const pg = new Pool({ ...target.connectionConfig(DB), max });
    pgs.push(pg);
    return pg;
  };
  const xidParticipant = (pool: PostgresPool): PostgresParticipant => {
    const p = new PostgresParticipant({ name: 'accounts', pool, commitProof: 'xid', connectionLossWaitMs: 3000 });
    participants.push(p);
    return p;
  };
  const balance = async (id: number): Promise<number | undefined> => (await admin.query<{ balance: number }>('select balance from accounts where id = $1', [id])).rows[0]?.balance;

  /** A branch that wrote, prepared; its ref with the proof its yes vote carried. */
  async function preparedBranch(participant: PostgresParticipant, id: number) {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('insert into accounts values ($1, 1)', [id]);
    const vote = await participant.prepare(ref);
    if (vote.vote !== 'yes' || !('xid' in vote)) throw new Error(`expected a yes with an xid, got ${JSON.stringify(vote)}`);
    return { ...ref, xid: vote.xid };
  }

  beforeAll(async () => {
    [cluster, other] = await Promise.all([PgCluster.start({ name: 'round-trip' }), PgCluster.start({ name: 'round-trip-other' })]);
    for (const c of [cluster, other]) {
      await c.createDatabase(DB);
      await c.withClient((client) => client.query(accountsTableSql({ balance: 'int' })), DB);
    }
    admin = new Client(cluster.connectionConfig(DB));
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.end();
    await Promise.all([cluster?.destroy(), other?.destroy()]);
  });

  beforeEach(async () => {
    await admin.query('truncate accounts');
    await other.withClient((c) => c.query('truncate accounts'), DB);
  });

  afterEach(async () => {
    for (const p of participants.splice(0)) await p.close();
    for (const pg of pgs.splice(0)) await pg.end();
    for (const c of [cluster, other]) {
      const left = await c.preparedGids(PREFIX);
      for (const gid of left) await c.withClient((client) => client.query(`rollback prepared '${gid}'`), DB);
      expect(left).toEqual([]);
    }
  });

  it('reads the system identifier once per connection, and again on a new connection; every proof is the full cluster history', async () => {
    const pg = pgPool();
    const pool = new TestPool(pg, { oneWrapperPerConnection: true });
    const participant = xidParticipant(pool);
    await participant.start();
    const history = await historyOf(cluster);
    const prepares = (): string[] => pool.statements.filter((s) => s.includes('PREPARE TRANSACTION'));

    const first = await preparedBranch(participant, 1);
    const second = await preparedBranch(participant, 2);
    expect(prepares()).toHaveLength(2);
    expect(prepares()[0]).toMatch(READS_CONTROL_FILE);
    expect(prepares()[1]).not.toMatch(READS_CONTROL_FILE);
    expect(prepares()[1]).toMatch(CHECKS_POSTMASTER);
    for (const ref of [first, second]) expect(ref.xid).toMatch(new RegExp(`^${history.replace('.', '\\.')}:[0-9]+$`));

    // The remembered proof decides a 42704 as the full one would: a COMMIT PREPARED whose answer was
    // lost is acknowledged from the commit log on its retry. The lost answer also cost the connection.
    pool.inject({ match: /^COMMIT PREPARED/, mode: 'lose-answer' });
    const lost = await participant.commit(second).catch((e: unknown) => e);
    expect(isTwopcError(lost) && lost.code).toBe('outcome-unknown');
    await participant.commit(second);
    await participant.commit(first);
    expect([await balance(1), await balance(2)]).toEqual([1, 1]);

    // A new connection (the old one's backend terminated) reads the control file again.
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    await waitFor('the pool to drop its dead connections', async () => pg.totalCount === 0);
    const third = await preparedBranch(participant, 3);
    expect(prepares()).toHaveLength(3);
    expect(prepares()[2]).toMatch(READS_CONTROL_FILE);
    expect(third.xid.startsWith(`${history}:`)).toBe(true);
    await participant.commit(third);
  });

  it('a connection that a pooler moves to another cluster gets that cluster\'s system identifier, in the same round trip', async () => {
    const pools = new Map([
      [cluster, pgPool(cluster)],
      [other, pgPool(other)],
    ]);
    let target = cluster;
    const participant = xidParticipant(routedPool(() => pools.get(target)!));
    await participant.start();

    const onFirst = await preparedBranch(participant, 1);
    expect(onFirst.xid.startsWith(`${await historyOf(cluster)}:`)).toBe(true);
    await participant.commit(onFirst);
    target = other;
    const onOther = await preparedBranch(participant, 2);
    const otherHistory = await historyOf(other);
    expect(otherHistory).not.toBe(await historyOf(cluster));
    expect(onOther.xid.startsWith(`${otherHistory}:`)).toBe(true);
    await participant.commit(onOther);
    expect(await other.withClient(async (c) => (await c.query('select balance from accounts where id = 2')).rows[0]?.balance, DB)).toBe(1);
  });

  it('sends no in-block guard when the connection says the block is open: PREPARE, one-phase COMMIT, the read-only probe', async () => {
    for (const txStatus of [true, false]) {
      const pool = new TestPool(pgPool(), { txStatus });
      const participant = new PostgresParticipant({ name: 'accounts', pool });
      participants.push(participant);
      await participant.start();
      pool.statements.length = 0;
      const twoPhase = newBranch('accounts');
      await (await participant.openBranch(twoPhase)).query('insert into accounts values ($1, 1)', [txStatus ? 1 : 2]);
      expect(await participant.prepare(twoPhase)).toEqual({ vote: 'yes' });
      await participant.commit(twoPhase);
      const onePhase = newBranch('accounts');
      await (await participant.openBranch(onePhase)).query('update accounts set balance = 7 where id = $1', [txStatus ? 1 : 2]);
      await participant.commit(onePhase, { onePhase: true });
      const readOnly = newBranch('accounts');
      await (await participant.openBranch(readOnly)).query('select 1');
      expect(await participant.prepare(readOnly)).toEqual({ vote: 'read-only' });
      // Without the status (an older pg, a wrapping pool) each of the three asks the server.
      expect(pool.count(/SAVEPOINT twopc_in_block/)).toBe(txStatus ? 0 : 3);
      expect(await balance(txStatus ? 1 : 2)).toBe(7);
    }
  });

  it('votes no when the application ended the block through the branch client, status path or not', async () => {
    const pool = new TestPool(pgPool());
    const participant = xidParticipant(pool);
    await participant.start();
    for (const text of ['insert into accounts values (1, 1); commit', 'insert into accounts values (2, 1); rollback', 'insert into accounts values (3, 1); commit; select 1/0']) {
      const ref = newBranch('accounts');
      const branch = await participant.openBranch(ref);
      await branch.query(text).catch(() => undefined);
      const vote = await participant.prepare(ref);
      expect(vote).toMatchObject({ vote: 'no', sqlState: '25P01' });
      await participant.rollback(ref);
    }
    // The guard answered: the status was 'I' (or not known to be current, after the failed text).
    expect(pool.count(/SAVEPOINT twopc_in_block/)).toBe(3);
    expect(pool.count(/PREPARE TRANSACTION/)).toBe(3);
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
  });
});

/**
 * The timeline is read in every PREPARE round trip, the remembered system
 * identifier or not: a connection that a pooler moves from a primary to its
 * promoted standby (the same system identifier, timeline 2) must vote with the
 * new timeline, or a proof of the old history would judge the new one's xids.
 */
describe('the PREPARE round trip across a promotion', () => {
  let primary: PgCluster;
  let standby: PgCluster;
  const pgs: Pool[] = [];

  beforeAll(async () => {
    primary = await PgCluster.start({ name: 'round-trip-primary', settings: { wal_keep_size: '64MB' } });
    await primary.createDatabase(DB);
    await primary.withClient((client) => client.query(accountsTableSql({ balance: 'int' })), DB);
    standby = await PgCluster.standbyOf(primary, 'round_trip_standby');
  });

  afterAll(async () => {
    for (const pg of pgs) await pg.end().catch(() => undefined);
    await Promise.all([standby?.destroy(), primary?.destroy()]);
  });

  it('a connection moved to the promoted standby votes with timeline 2, on every path of the round trip there', async () => {
    const pools = new Map([primary, standby].map((c) => {
      const pg = new Pool({ ...c.connectionConfig(DB), max: 1 });
      pg.on('error', () => undefined);
      pgs.push(pg);
      return [c, pg] as const;
    }));
    let target = primary;
    const pool = routedPool(() => pools.get(target)!);
    const participant = new PostgresParticipant({ name: 'accounts', pool, commitProof: 'xid', connectionLossWaitMs: 3000 });
    await participant.start();
    const prepare = async (id: number) => {
      const ref = newBranch('accounts');
      await (await participant.openBranch(ref)).query('insert into accounts values ($1, 1)', [id]);
      const vote = await participant.prepare(ref);
      if (vote.vote !== 'yes' || !('xid' in vote)) throw new Error(`expected a yes with an xid, got ${JSON.stringify(vote)}`);
      await participant.commit({ ...ref, xid: vote.xid });
      const statement = pool.statements.filter((s) => s.includes('PREPARE TRANSACTION')).at(-1)!;
      return { xid: vote.xid, statement };
    };
    try {
      const before = await historyOf(primary);
      expect(before).toMatch(/\.1$/);
      const system = before.slice(0, before.lastIndexOf('.'));
      expect((await prepare(1)).xid.startsWith(`${before}:`)).toBe(true);

      await standby.withClient((c) => c.query('select pg_promote()'));
      await waitFor('the promotion', async () => (await standby.withClient((c) => c.query('select pg_is_in_recovery() as r'))).rows[0].r === false);
      expect(await historyOf(standby)).toBe(`${system}.2`);
      target = standby;
      // Each path of the round trip there: the primary's start time still remembered (another
      // postmaster: the control file is read again, and the start time forgotten); nothing
      // remembered (read both, remember the standby's); the standby's remembered (no control file).
      const moved = await prepare(2);
      expect(moved.statement).toMatch(CHECKS_POSTMASTER);
      const fresh = await prepare(3);
      expect(fresh.statement).toMatch(READS_CONTROL_FILE);
      const cached = await prepare(4);
      expect(cached.statement).toMatch(CHECKS_POSTMASTER);
      expect(cached.statement).not.toMatch(READS_CONTROL_FILE);
      for (const { xid } of [moved, fresh, cached]) expect(xid).toMatch(new RegExp(`^${system}\\.2:[0-9]+$`));
      expect((await standby.withClient((c) => c.query('select count(*)::int as n from accounts where id in (2, 3, 4)'), DB)).rows[0].n).toBe(3);
    } finally {
      await participant.close();
    }
    await standby.assertNoPrepared(PREFIX);
  });
});
