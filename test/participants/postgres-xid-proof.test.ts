import { Client, Pool } from 'pg';
import { isTwopcError } from '../../coordinator/engine/ports/protocol';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from '../../participant-sdk/src/postgres/postgres-pool';
import { PostgresParticipant } from '../../participant-sdk/src/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';
import { accountsTableSql } from '../../harness/bank';
import { PREFIX, TestPool, newBranch } from './postgres-fixture';

const DB = 'xid_proof';

/** The error code `p` rejects with (fails the test if it resolves). */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isTwopcError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a rejection');
}

/**
 * commitProof 'xid': PREPARE reads the branch's xid in its own round trip, no
 * marker row is written, and a COMMIT/ROLLBACK PREPARED that finds nothing
 * (42704) is decided from pg_xact_status(xid): committed = acknowledged,
 * aborted = heuristic hazard (for a commit), in progress = retry, no status
 * = heuristic hazard.
 */
describe('PostgresParticipant with commitProof xid on PostgreSQL', () => {
  let cluster: PgCluster;
  let admin: Client;
  let pg: Pool;
  let pool: TestPool;
  let participant: PostgresParticipant;

  const balance = async (id: number): Promise<number | undefined> => (await admin.query<{ balance: number }>('select balance from accounts where id = $1', [id])).rows[0]?.balance;
  const markers = async (): Promise<number> => Number((await admin.query('select count(*) from twopc_marker')).rows[0].count);
  // A proof is <system identifier>.<timeline>:<xid8>; the xid is its last part.
  const xidOf = (proof: string): string => proof.slice(proof.lastIndexOf(':') + 1);
  const xactStatus = async (proof: string): Promise<string | null> => (await admin.query<{ s: string | null }>('select pg_xact_status($1::text::xid8) as s', [xidOf(proof)])).rows[0].s;

  /** A branch that wrote, prepared; returns its ref with the xid its yes vote carried. */
  async function preparedBranch(id: number, amount: number) {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('insert into accounts values ($1, $2)', [id, amount]);
    const vote = await participant.prepare(ref);
    if (vote.vote !== 'yes' || !('xid' in vote)) throw new Error(`expected a yes with an xid, got ${JSON.stringify(vote)}`);
    return { ...ref, xid: vote.xid };
  }

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'xid-proof' });
    await cluster.createDatabase(DB);
    admin = new Client(cluster.connectionConfig(DB));
    await admin.connect();
    await admin.query(accountsTableSql({ balance: 'int' }));
  });

  afterAll(async () => {
    await admin?.end();
    await cluster?.destroy();
  });

  beforeEach(async () => {
    await admin.query('truncate accounts');
    pg = new Pool({ ...cluster.connectionConfig(DB), max: 6 });
    pool = new TestPool(pg);
    participant = new PostgresParticipant({ name: 'accounts', pool, commitProof: 'xid', connectionLossWaitMs: 3000 });
    await participant.start();
    pool.statements.length = 0;
  });

  afterEach(async () => {
    await participant.close();
    await pg.end();
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await admin.query(`rollback prepared '${gid}'`);
    expect(left).toEqual([]);
  });

  it('refuses an unknown commitProof, naming the field', () => {
    expect(() => new PostgresParticipant({ name: 'x', pool, commitProof: 'both' as never })).toThrow(/commitProof must be one of marker, xid/);
  });

  it('prepares with the xid in the same round trip, writes no marker, and commits', async () => {
    const ref = await preparedBranch(2, 50);
    const cluster = (await admin.query("select (select system_identifier from pg_control_system())::text || '.1' as c")).rows[0].c;
    expect(ref.xid).toMatch(new RegExp(`^${cluster.replace('.', '\\.')}:[0-9]+$`));
    expect(await xactStatus(ref.xid)).toBe('in progress');
    await participant.commit(ref);
    expect(await balance(2)).toBe(50);
    expect(await markers()).toBe(0);
    expect(await xactStatus(ref.xid)).toBe('committed');
    // BEGIN, xid + PREPARE, COMMIT PREPARED: the same round trips as the marker proof, one row fewer.
    const adapterStatements = pool.statements.filter((s) => !s.startsWith('insert into accounts'));
    expect(adapterStatements).toHaveLength(3);
    expect(pool.count(/twopc_marker/)).toBe(0);
  });

  it('42704 after its commit: already committed, so acknowledged (commit repeated after a lost answer)', async () => {
    const ref = await preparedBranch(2, 50);
    pool.inject({ match: /^COMMIT PREPARED/, mode: 'lose-answer' });
    expect(await codeOf(participant.commit(ref))).toBe('outcome-unknown');
    // The engine retries: no such prepared transaction, and the xid committed.
    await participant.commit(ref);
    expect(await balance(2)).toBe(50);
    expect(await participant.recordedState(ref)).toBe('committed');
    expect(await participant.status(ref)).toBe('committed');
    // A rollback now would contradict what happened.
    expect(await codeOf(participant.rollback(ref))).toBe('heuristic-hazard');
  });

  it('42704 after a rollback: a commit is a heuristic hazard, a repeated rollback is done', async () => {
    const ref = await preparedBranch(2, 50);
    // Someone (an operator) rolled it back by hand.
    await admin.query(`rollback prepared '${ref.gid}'`);
    expect(await xactStatus(ref.xid)).toBe('aborted');
    const err = await participant.commit(ref).catch((e: unknown) => e);
    expect(isTwopcError(err) && err.code).toBe('heuristic-hazard');
    expect(String((err as Error).message)).toMatch(new RegExp(`transaction ${xidOf(ref.xid)} aborted`));
    await participant.rollback(ref);
    expect(await balance(2)).toBeUndefined();
    expect(await participant.recordedState(ref)).toBe('unknown');
  });

  it('42704 while the branch transaction is still in progress (its PREPARE not finished): retry, then it commits', async () => {
    // The state "no such prepared transaction, xid in progress": the branch's transaction has its xid but
    // its PREPARE has not completed (in flight on its backend; PostgreSQL skips a not-yet-valid GID).
    const ref = newBranch('accounts');
    const holder = new Client(cluster.connectionConfig(DB));
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('insert into accounts values (3, 30)');
      const xid = String((await holder.query('select pg_current_xact_id()::text as xid')).rows[0].xid);
      const proven = { ...ref, xid };
      expect(await codeOf(participant.commit(proven))).toBe('outcome-unknown');
      expect(await codeOf(participant.rollback(proven))).toBe('outcome-unknown');
      await holder.query(`prepare transaction '${ref.gid}'`);
      // Now prepared: the retry commits it.
      await participant.commit(proven);
      expect(await balance(3)).toBe(30);
    } finally {
      await holder.end();
    }
  });

  it('a prepared branch survives an immediate stop: after the restart its xid reads in progress and the commit completes', async () => {
    const ref = await preparedBranch(4, 40);
    await participant.close();
    await pg.end();
    await admin.end();
    await cluster.crash();
    await cluster.startServer();
    admin = new Client(cluster.connectionConfig(DB));
    await admin.connect();
    pg = new Pool({ ...cluster.connectionConfig(DB), max: 6 });
    pool = new TestPool(pg);
    participant = new PostgresParticipant({ name: 'accounts', pool, commitProof: 'xid' });
    await participant.start();
    // Recovery restored the prepared transaction before the server took connections: the commit
    // log has its xid in progress, and it is prepared again.
    expect(await xactStatus(ref.xid)).toBe('in progress');
    expect(await cluster.preparedGids(PREFIX)).toEqual([ref.gid]);
    // Asked again after a restart (no held state), the vote is yes with the same xid.
    expect(await participant.prepare(ref)).toEqual({ vote: 'yes', xid: ref.xid });
    await participant.commit(ref);
    await participant.commit(ref);
    expect(await balance(4)).toBe(40);
  });

  it('several branches prepared back to back: asked again (no held state), each votes yes with its own xid', async () => {
    // Nothing completes between these PREPAREs, so each prepared xid is at or above the snapshot's
    // xmax (last completed + 1): the full xid must be placed from xmin (the oldest running, prepared
    // ones included), not below xmax.
    const refs = [];
    for (let id = 10; id < 14; id += 1) refs.push(await preparedBranch(id, id));
    const again = new PostgresParticipant({ name: 'accounts', pool, commitProof: 'xid' });
    for (const ref of refs) {
      expect(await again.prepare(ref)).toEqual({ vote: 'yes', xid: ref.xid });
      expect(await participant.prepare(ref)).toEqual({ vote: 'yes', xid: ref.xid });
    }
    for (const ref of refs) await again.commit(ref);
    for (let id = 10; id < 14; id += 1) expect(await balance(id)).toBe(id);
    await again.close();
  });

  it('xid status unavailable: an xid the server has not reached is a heuristic hazard, never a guess', async () => {
    const ref = newBranch('accounts');
    const future = { ...ref, xid: '999999999999' };
    const err = await participant.commit(future).catch((e: unknown) => e);
    expect(isTwopcError(err) && err.code).toBe('heuristic-hazard');
    expect(String((err as Error).message)).toMatch(/cannot say what became of its transaction 999999999999/);
    expect(await codeOf(participant.rollback(future))).toBe('heuristic-hazard');
  });

  it('xid status unavailable: a status the commit log no longer holds (null) is a heuristic hazard', async () => {
    // PostgreSQL answers null for an xid older than its commit log keeps; vacuum truncates pg_xact
    // only after autovacuum_freeze_max_age (200 million by default) transactions, too many for a
    // test, so the answer is put in place of the real one here.
    const nullStatus = new PostgresParticipant({ name: 'accounts', pool: withLookupFault(pool, { current: { status: () => null } }), commitProof: 'xid' });
    const ref = { ...newBranch('accounts'), xid: '5' };
    const err = await nullStatus.commit(ref).catch((e: unknown) => e);
    expect(isTwopcError(err) && err.code).toBe('heuristic-hazard');
    expect(String((err as Error).message)).toMatch(/no longer holds the status of its transaction 5/);
    expect(await codeOf(nullStatus.rollback(ref))).toBe('heuristic-hazard');
    await nullStatus.close();
  });

  it('keepPreparedConnectionMs: phase 2 runs on the connection that prepared; one not asked for goes back to the pool', async () => {
    let checkouts = 0;
    const counting = { connect: () => ((checkouts += 1), pool.connect()) };
    const keeping = new PostgresParticipant({ name: 'accounts', pool: counting, commitProof: 'xid', keepPreparedConnectionMs: 300 });
    const ref = newBranch('accounts');
    await (await keeping.openBranch(ref)).query('insert into accounts values (16, 6)');
    const vote = await keeping.prepare(ref);
    await keeping.commit({ ...ref, ...vote });
    expect({ checkouts, balance: await balance(16) }).toEqual({ checkouts: 1, balance: 6 });
    expect(pool.count(/^COMMIT PREPARED/)).toBe(1);

    const late = newBranch('accounts');
    await (await keeping.openBranch(late)).query('insert into accounts values (17, 7)');
    const lateVote = await keeping.prepare(late);
    const idle = pg.idleCount;
    await new Promise((r) => setTimeout(r, 500));
    expect(pg.idleCount).toBe(idle + 1);
    await keeping.rollback({ ...late, ...lateVote });
    // The rollback found nothing kept: it checked a connection out (and another to end any holder of the branch).
    expect(checkouts).toBeGreaterThanOrEqual(3);
    expect(await balance(17)).toBeUndefined();
    await keeping.close();
  });

  it.each<[string, LookupFault]>([
    ['connection refused', { connect: () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' }) }],
    ['too many clients (53300)', { connect: () => Object.assign(pgError('53300', 'sorry, too many clients already'), { severity: 'FATAL' }) }],
    ['the server starting up (57P03)', { connect: () => Object.assign(pgError('57P03', 'the database system is starting up'), { severity: 'FATAL' }) }],
    ['a statement timeout (57014)', { status: () => pgError('57014', 'canceling statement due to statement timeout') }],
    ['an unexpected error (XX000)', { status: () => pgError('XX000', 'internal error') }],
  ])('the status lookup after 42704 fails transiently (%s): outcome unknown, and the next retry acknowledges', async (_name, transient) => {
    const fault: { current?: LookupFault } = {};
    const faulty = new PostgresParticipant({ name: 'accounts', pool: withLookupFault(pool, fault), commitProof: 'xid' });
    const ref = await preparedBranch(6, 60);
    pool.inject({ match: /^COMMIT PREPARED/, mode: 'lose-answer' });
    expect(await codeOf(faulty.commit(ref))).toBe('outcome-unknown');
    // The retry's COMMIT PREPARED (its connection let through) finds nothing (42704); the lookup that follows fails.
    fault.current = { ...transient, connectsFirst: 1 };
    expect(await codeOf(faulty.commit(ref))).toBe('outcome-unknown');
    fault.current = undefined;
    await faulty.commit(ref);
    expect(await balance(6)).toBe(60);
    await faulty.close();
  });

  it('a decision without the xid (recovery, a sweep, an operator, an older version): a rollback met by a hand commit is a heuristic hazard', async () => {
    const { xid, ...ref } = await preparedBranch(7, 70);
    // Someone commits it by hand between the adapter's look at the prepared branch and its ROLLBACK PREPARED.
    pool.inject({ match: /^ROLLBACK PREPARED/, mode: 'before', whenRunning: async () => void (await admin.query(`commit prepared '${ref.gid}'`)) });
    const err = await participant.rollback(ref).catch((e: unknown) => e);
    expect(isTwopcError(err) && err.code).toBe('heuristic-hazard');
    expect(String((err as Error).message)).toContain(`its transaction ${xidOf(xid)} committed`);
    expect(await balance(7)).toBe(70);
    // A hazard is final: the adapter keeps nothing for the branch.
    expect((participant as unknown as { env: { readXids: Map<string, string> } }).env.readXids.size).toBe(0);
  });

  it('a commit decision without the xid: a COMMIT PREPARED retried after a lost answer is acknowledged (xid read before the first attempt)', async () => {
    const { xid, ...ref } = await preparedBranch(8, 80);
    pool.inject({ match: /^COMMIT PREPARED/, mode: 'lose-answer' });
    expect(await codeOf(participant.commit(ref))).toBe('outcome-unknown');
    await participant.commit(ref);
    expect(await balance(8)).toBe(80);
    expect(await xactStatus(xid)).toBe('committed');
    // Once judged, the adapter keeps nothing for it.
    expect((participant as unknown as { env: { readXids: Map<string, string> } }).env.readXids.size).toBe(0);
  });

  it('preparedXid: the xid of a prepared branch (what an operator\'s commit puts in its decision); undefined once ended, and under marker', async () => {
    const ref = await preparedBranch(9, 90);
    expect(await participant.preparedXid(ref)).toBe(ref.xid);
    const marker = new PostgresParticipant({ name: 'accounts', pool });
    expect(await marker.preparedXid(ref)).toBeUndefined();
    await participant.commit(ref);
    expect(await participant.preparedXid(ref)).toBeUndefined();
  });

  it('F1: the xid is judged only by the cluster history that prepared it: another cluster (a DSN repointed, a dump restored) is a heuristic hazard, not its unrelated transaction', async () => {
    const ref = await preparedBranch(15, 15);
    const xid = BigInt(xidOf(ref.xid));
    const other = await PgCluster.start({ name: 'xid-proof-other' });
    try {
      await other.createDatabase(DB);
      const otherAdmin = new Client(other.connectionConfig(DB));
      await otherAdmin.connect();
      try {
        await otherAdmin.query(accountsTableSql({ balance: 'int' }));
        // The other cluster commits unrelated transactions until the same xid is one of them.
        while (BigInt((await otherAdmin.query('select pg_current_xact_id()::text as x')).rows[0].x) < xid);
        expect((await otherAdmin.query('select pg_xact_status($1::text::xid8) as s', [xid.toString()])).rows[0].s).toBe('committed');
        const otherPool = new Pool({ ...other.connectionConfig(DB), max: 2 });
        const repointed = new PostgresParticipant({ name: 'accounts', pool: otherPool, commitProof: 'xid' });
        try {
          await repointed.start();
          const err = await repointed.commit(ref).catch((e: unknown) => e);
          expect(isTwopcError(err) && err.code).toBe('heuristic-hazard');
          expect(String((err as Error).message)).toMatch(/not the history that prepared it/);
          expect(await codeOf(repointed.rollback(ref))).toBe('heuristic-hazard');
          // Nor does a read take the other cluster's transaction for the branch's commit.
          expect(await repointed.recordedState(ref)).toBe('unknown');
        } finally {
          await repointed.close();
          await otherPool.end();
        }
      } finally {
        await otherAdmin.end();
      }
    } finally {
      await other.destroy();
    }
    // On its own cluster the branch is still prepared and commits.
    await participant.commit(ref);
    expect(await balance(15)).toBe(15);
  });

  it('F1: a proof of another timeline (a promoted standby, a point-in-time restore) is a heuristic hazard after 42704, even where the xid committed', async () => {
    const ref = await preparedBranch(16, 16);
    await participant.commit(ref);
    // The same system identifier, the next timeline: what a failover or a restore starts.
    const [cluster, xid] = ref.xid.split(':');
    const [sysid, timeline] = cluster.split('.');
    const otherTimeline = { ...ref, xid: `${sysid}.${Number(timeline) + 1}:${xid}` };
    const err = await participant.commit(otherTimeline).catch((e: unknown) => e);
    expect(isTwopcError(err) && err.code).toBe('heuristic-hazard');
    expect(String((err as Error).message)).toMatch(/not the history that prepared it/);
    expect(await participant.recordedState(otherTimeline)).toBe('unknown');
    // The same proof with its own history: acknowledged; a bare xid (a decision of an older version) too.
    await participant.commit(ref);
    await participant.commit({ ...ref, xid });
    expect(await participant.recordedState(ref)).toBe('committed');
  });

  it('a branch that wrote nothing votes read-only and leaves nothing prepared', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    // A write tag that changed no row: the branch has no xid.
    await branch.query('delete from accounts where id = -1');
    expect(await participant.prepare(ref)).toEqual({ vote: 'read-only' });
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
  });

  it('a one-phase commit still writes its marker (its answer may be lost before any xid is known)', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('insert into accounts values (5, 5)');
    pool.inject({ match: /; COMMIT$/, mode: 'lose-answer' });
    await participant.commit(ref, { onePhase: true });
    expect(await balance(5)).toBe(5);
    expect(await markers()).toBe(1);
  });
});

/** What a faulty pool does: fail connections (after letting `connectsFirst` through), or answer pg_xact_status with null or an error. */
interface LookupFault {
  connect?: () => Error;
  connectsFirst?: number;
  status?: () => Error | null;
}

/** `pool`, with `fault.current` (while set) applied to connections and pg_xact_status lookups. */
function withLookupFault(pool: PostgresPool, fault: { current?: LookupFault }): PostgresPool {
  return {
    async connect(): Promise<PostgresPoolClient> {
      const f = fault.current;
      if (f?.connect && (f.connectsFirst ?? 0) > 0) f.connectsFirst = (f.connectsFirst ?? 0) - 1;
      else if (f?.connect) throw f.connect();
      const client = await pool.connect();
      return {
        query: async (text, values) => {
          const sqlText = typeof text === 'string' ? text : text.text;
          const status = fault.current?.status;
          if (status && sqlText.includes('pg_xact_status')) {
            const answer = status();
            if (answer !== null) throw answer;
            return { command: 'SELECT', rowCount: 1, rows: [{ status: null }] } satisfies PostgresQueryResult;
          }
          return client.query(text as string, values as unknown[]);
        },
        release: (err) => client.release(err),
        on: (event, listener) => client.on(event, listener),
        removeListener: (event, listener) => client.removeListener(event, listener),
      };
    },
  };
}

/** An error as `pg` raises it for a server answer with `code`. */
function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}
