import { Client, Pool } from 'pg';
import { TransactionAbortedError } from '../../coordinator/engine/ports/protocol';
import type { BranchRef } from '../../coordinator/engine/ports/participant';
import { PostgresParticipant } from '../../participant-sdk/src/postgres/postgres-participant';
import * as sqlText from '../../participant-sdk/src/postgres/postgres-sql';
import { PgCluster } from '../../harness/pg-cluster';
import { PREFIX, TestPool, newBranch, waitFor } from './postgres-fixture';
import { accountsTableSql } from '../../harness/bank';

const DB = 'participant_loss';
jest.setTimeout(30_000);

describe('PostgresParticipant when connections are lost', () => {
  let cluster: PgCluster;
  let pg: Pool;
  let pool: TestPool;
  let participant: PostgresParticipant;
  let connectionErrors: Error[];

  // A fresh connection per call: the crash test kills every open one.
  const sql = <R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]> =>
    cluster.withClient(async (c) => (await c.query<R>(text, values)).rows, DB);
  const balance = async (id: number): Promise<number | undefined> => (await sql<{ balance: number }>('select balance from accounts where id = $1', [id]))[0]?.balance;

  /** Opens a branch that wrote, and returns its backend's pid. */
  const openWriting = async (ref: BranchRef, balanceValue: number): Promise<number> => {
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = $1 where id = 1', [balanceValue]);
    return (await branch.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
  };

  /** Blocks inserts into twopc_marker (reads go on) until the returned function is called. */
  const lockMarkers = async (): Promise<() => Promise<void>> => {
    const c = new Client(cluster.connectionConfig(DB));
    c.on('error', () => undefined);
    await c.connect();
    await c.query('begin');
    await c.query('lock table twopc_marker in exclusive mode');
    return async () => {
      await c.query('commit');
      await c.end();
    };
  };
  const waitingOnLock = (pid: number) => waitFor(`backend ${pid} to wait on a lock`, async () => (await sql('select 1 from pg_stat_activity where pid = $1 and wait_event_type = $2', [pid, 'Lock'])).length > 0);
  const backendExists = async (pid: number) => (await sql('select 1 from pg_stat_activity where pid = $1', [pid])).length > 0;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'participant-loss' });
    await cluster.createDatabase(DB);
    await sql(accountsTableSql({ balance: 'int' }));
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  beforeEach(async () => {
    await sql('truncate accounts');
    await sql('insert into accounts values (1, 100)');
    pg = new Pool({ ...cluster.connectionConfig(DB), max: 6 });
    pool = new TestPool(pg);
    connectionErrors = [];
    participant = new PostgresParticipant({ name: 'loss', pool, connectionLossWaitMs: 3000, onConnectionError: (e) => connectionErrors.push(e) });
    await participant.start();
  });

  afterEach(async () => {
    await participant.close();
    await pg.end();
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await sql(`rollback prepared '${gid}'`);
    expect(left).toEqual([]);
  });

  it('votes no when the held connection is killed before PREPARE, and rollback leaves nothing prepared', async () => {
    const ref = newBranch('loss');
    const pid = await openWriting(ref, 1);
    await sql('select pg_terminate_backend($1, 5000)', [pid]);
    await waitFor('the held client to report its lost connection', async () => connectionErrors.length > 0);
    const vote = await participant.prepare(ref);
    expect(vote).toMatchObject({ vote: 'no' });
    expect(vote.vote === 'no' && vote.reason).toMatch(/connection was lost before PREPARE/);
    expect(pool.count(/PREPARE TRANSACTION/)).toBe(0);
    await participant.rollback(ref);
    expect(await balance(1)).toBe(100);
  });

  it('votes no when the answer to PREPARE is lost, and rollback removes what the server prepared', async () => {
    const ref = newBranch('loss');
    await openWriting(ref, 2);
    pool.inject({ match: /PREPARE TRANSACTION/, mode: 'lose-answer' });
    const vote = await participant.prepare(ref);
    expect(vote.vote === 'no' && vote.reason).toMatch(/lost during PREPARE/);
    expect(await cluster.preparedGids(PREFIX)).toEqual([ref.gid]);
    await participant.rollback(ref);
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
    expect(await balance(1)).toBe(100);
  });

  it('waits for a PREPARE that completes after its connection was cut, then rolls it back', async () => {
    const ref = newBranch('loss');
    const pid = await openWriting(ref, 3);
    const unlock = await lockMarkers();
    pool.inject({ match: /PREPARE TRANSACTION/, mode: 'cut-while-running', whenRunning: waitingOnLock });
    const vote = await participant.prepare(ref);
    expect(vote).toMatchObject({ vote: 'no' });
    expect(await backendExists(pid)).toBe(true);
    // The old backend now gets its lock and prepares, though nobody hears it.
    await unlock();
    await waitFor('the orphaned PREPARE to complete', async () => (await cluster.preparedGids(PREFIX)).includes(ref.gid));
    await participant.rollback(ref);
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
    expect(await balance(1)).toBe(100);
  });

  it('terminates the old backend before ROLLBACK PREPARED, so a PREPARE still in flight can never complete', async () => {
    const ref = newBranch('loss');
    const pid = await openWriting(ref, 4);
    const unlock = await lockMarkers();
    pool.inject({ match: /PREPARE TRANSACTION/, mode: 'cut-while-running', whenRunning: waitingOnLock });
    expect(await participant.prepare(ref)).toMatchObject({ vote: 'no' });
    // Without the wait, ROLLBACK PREPARED would find nothing (42704, "done") and the
    // PREPARE would complete once the lock is released, leaving an orphan.
    await participant.rollback(ref);
    expect(await backendExists(pid)).toBe(false);
    await unlock();
    await new Promise((r) => setTimeout(r, 100));
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
    expect(await balance(1)).toBe(100);
  });

  it('answers outcome-unknown when the answer to COMMIT PREPARED is lost; the retry is acknowledged through the marker', async () => {
    const ref = newBranch('loss');
    await openWriting(ref, 5);
    expect(await participant.prepare(ref)).toEqual({ vote: 'yes' });
    pool.inject({ match: /^COMMIT PREPARED/, mode: 'lose-answer' });
    await expect(participant.commit(ref)).rejects.toMatchObject({ code: 'outcome-unknown' });
    await participant.commit(ref);
    expect(await balance(1)).toBe(5);
  });

  it('resolves a one-phase commit whose answer was lost to committed, through the marker', async () => {
    const ref = newBranch('loss');
    await openWriting(ref, 6);
    pool.inject({ match: /; COMMIT$/, mode: 'lose-answer' });
    await participant.commit(ref, { onePhase: true });
    expect(await balance(1)).toBe(6);
  });

  it('resolves a one-phase commit cut while running to aborted, after ending the old backend', async () => {
    const ref = newBranch('loss');
    const pid = await openWriting(ref, 7);
    const unlock = await lockMarkers();
    pool.inject({ match: /; COMMIT$/, mode: 'cut-while-running', whenRunning: waitingOnLock });
    const error = await participant.commit(ref, { onePhase: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionAbortedError);
    expect((error as TransactionAbortedError).reason.cause).toBe('connection-lost');
    expect(await backendExists(pid)).toBe(false);
    await unlock();
    expect(await balance(1)).toBe(100);
  });

  it('status(): ends a one-phase COMMIT left running by a crashed process before reading the marker', async () => {
    for (const lockReleasedFirst of [false, true]) {
      const ref = newBranch('loss');
      const unlock = await lockMarkers();
      // The "previous process": its COMMIT waits on the lock when the process dies.
      const previous = new Client(cluster.connectionConfig(DB));
      previous.on('error', () => undefined);
      await previous.connect();
      await previous.query('begin');
      await previous.query('update accounts set balance = 9 where id = 1');
      previous.query(sqlText.commitOnePhase('public', ref.gid, ref.txId)).catch(() => undefined);
      const pid = (previous as unknown as { processID: number }).processID;
      await waitingOnLock(pid);
      (previous as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      if (lockReleasedFirst) {
        await unlock();
        await waitFor('the orphaned COMMIT to finish', async () => !(await backendExists(pid)));
        expect(await participant.status(ref)).toBe('committed');
        expect(await balance(1)).toBe(9);
        await sql('update accounts set balance = 100 where id = 1');
      } else {
        // Read too early, the marker would be absent although the COMMIT is about to happen.
        expect(await participant.status(ref)).toBe('unknown');
        expect(await backendExists(pid)).toBe(false);
        await unlock();
        expect(await balance(1)).toBe(100);
      }
    }
  });

  it('keeps a prepared branch across a server crash and commits it after restart; connection errors never crash the process', async () => {
    const prepared = newBranch('loss', 1);
    const held = newBranch('loss', 2, prepared.txId);
    await openWriting(prepared, 8);
    expect(await participant.prepare(prepared)).toEqual({ vote: 'yes' });
    const heldBranch = await participant.openBranch(held);
    await heldBranch.query('insert into accounts values (2, 2)');
    // Idle pooled connections too: their errors arrive while nobody uses them.
    const idle = await Promise.all([pg.connect(), pg.connect()]);
    idle.forEach((c) => c.release());

    await cluster.crash();
    await waitFor('connection errors to be reported', async () => connectionErrors.length >= 1);
    await cluster.startServer();

    expect(await participant.prepare(held)).toMatchObject({ vote: 'no' });
    await participant.rollback(held);
    // Like the engine: retry phase 2 until acknowledged.
    for (let attempt = 1; ; attempt++) {
      try {
        await participant.commit(prepared);
        break;
      } catch (e) {
        if (attempt >= 5) throw e;
        expect(e).toMatchObject({ code: expect.stringMatching(/outcome-unknown|participant-unavailable/) });
      }
    }
    expect(await balance(1)).toBe(8);
    expect(await balance(2)).toBeUndefined();
  });
});
