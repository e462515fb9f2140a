import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { TwopcError } from '../../coordinator/engine/ports/protocol';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import type { DecisionLog } from '../../coordinator/engine/ports/decision-log';
import type { BranchInfo } from '../../coordinator/engine/ports/types';
import type { BranchRef, Participant } from '../../coordinator/engine/ports/participant';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { buildGid } from '../../participant-sdk/src/gid';
import { PgCluster } from '../../harness/pg-cluster';
import { interceptedLog } from './intercepted-log';
import { waitFor } from '../service/service-fixture';

/**
 * An operator's settle (`twopc settle`): a transaction whose participant
 * contradicted the decision stays unfinished with its hazard until an
 * operator, having reconciled the data by hand, settles it. Real PostgreSQL
 * for the log and the ledger; the hazards are real contradictions (a branch
 * rolled back behind the coordinator's back after the commit decision).
 */

const PREFIX = 'sth';

/** What the operator's process may be made to meet, per GID. */
interface Faults {
  commitUnavailable: Set<string>;
  commitHazard: Set<string>;
  stateUnavailable: Set<string>;
}

describe("an operator's settle of a transaction with a heuristic hazard", () => {
  let cluster: PgCluster;
  let pool: Pool;
  let ledger: PostgresParticipant;
  const faults: Faults = { commitUnavailable: new Set(), commitHazard: new Set(), stateUnavailable: new Set() };
  let failComplete = false;
  let failList = false;
  let engine: TransactionEngine;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-settle-hazard' });
    for (const db of ['ledger', 'twopc_log']) await cluster.createDatabase(db);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'ledger');
    pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 6 });
    ledger = new PostgresParticipant({ name: 'ledger', pool });
    await ledger.start();
    // The operator's coordinator, started (its recovery leaves hazards alone; no sweeps).
    engine = engineOn(interceptedLog(logOn(), {
      append: (next, record, options) => {
        if (failComplete && record.type === 'complete') return Promise.reject(new TwopcError('log-unavailable', 'the log store is down (test)'));
        return next(record, options);
      },
    }));
    await engine.start();
  });

  afterAll(async () => {
    await engine?.stop();
    await ledger?.close();
    await pool?.end();
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await cluster.withClient((c) => c.query(`rollback prepared '${gid}'`), 'ledger');
    await cluster?.destroy();
    expect(left).toEqual([]);
  });

  afterEach(() => {
    for (const set of Object.values(faults)) set.clear();
    failComplete = false;
    failList = false;
  });

  const logOn = () => new PostgresDecisionLog({ connectionString: cluster.connectionString('twopc_log'), schema: 'settle', allowVolatile: true, onWarning: () => undefined });

  /** The ledger, as the operator's process reaches it: with the faults a test sets. */
  function faulty(): Participant {
    return {
      name: 'ledger',
      prepare: (b: BranchRef) => ledger.prepare(b),
      commit: async (b: BranchRef, o?: { onePhase?: boolean }) => {
        if (faults.commitUnavailable.has(b.gid)) throw new TwopcError('participant-unavailable', 'the ledger cannot be reached (test)');
        if (faults.commitHazard.has(b.gid)) throw new TwopcError('heuristic-hazard', 'the ledger reports a heuristic hazard (test)');
        return ledger.commit(b, o);
      },
      rollback: (b: BranchRef) => ledger.rollback(b),
      status: (b: BranchRef) => ledger.status(b),
      recordedState: async (b: BranchRef) => {
        if (faults.stateUnavailable.has(b.gid)) throw new TwopcError('participant-unavailable', 'the ledger cannot be reached (test)');
        return ledger.recordedState(b);
      },
      preparedXid: (b: BranchRef) => ledger.preparedXid(b),
      listPrepared: async (prefix: string) => {
        if (failList) throw new TwopcError('participant-unavailable', 'the ledger cannot be reached (test)');
        return ledger.listPrepared(prefix);
      },
      close: async () => undefined,
    };
  }

  function engineOn(log: DecisionLog): TransactionEngine {
    return new TransactionEngine({
      log,
      participants: new ParticipantRegistry([faulty()]),
      config: parseEngineConfig({ gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, commitWaitMs: 1_000, phaseTwoBaseDelayMs: 60_000, phaseTwoMaxDelayMs: 60_000 }),
    });
  }

  /** A transfer whose coordinator died right after its commit decision: two prepared branches, each with a row. */
  async function strandedCommit(): Promise<{ txId: string; branches: BranchInfo[] }> {
    const txId = uuidv7();
    const branches: BranchInfo[] = [];
    for (const branchId of [1, 2]) {
      const b: BranchInfo = { branchId, gid: buildGid(PREFIX, txId, branchId), participant: 'ledger' };
      const client = await ledger.openBranch({ ...b, txId });
      await client.query('insert into items (id) values ($1)', [b.gid]);
      const { xid } = (await ledger.prepare({ ...b, txId })) as { xid?: string };
      branches.push(xid ? { ...b, xid } : b);
    }
    const log = logOn();
    await log.open();
    const at = Date.now() - 60_000;
    await log.append({ type: 'begin', txId, at, expiresAt: at + 1_000 });
    for (const branch of branches) await log.append({ type: 'enlist', txId, at, branch: { branchId: branch.branchId, gid: branch.gid, participant: branch.participant } });
    await log.decide({ txId, at, outcome: 'commit', source: 'engine', branches });
    await log.close();
    return { txId, branches };
  }

  /**
   * Another process's phase 2 meets the hazard: branch 2 was rolled back by hand after the commit decision,
   * and branch 1's database did not answer, so branch 1 stays prepared. That process then stops.
   */
  async function hazardOnBranchTwo(txId: string, branches: BranchInfo[], leaveBranchOnePrepared = true): Promise<void> {
    await cluster.withClient((c) => c.query(`rollback prepared '${branches[1].gid}'`), 'ledger');
    const log = logOn();
    await log.open();
    const other = engineOn(log);
    if (leaveBranchOnePrepared) faults.commitUnavailable.add(branches[0].gid);
    await other.admin.retry(txId, 0);
    await waitFor('the hazard recorded', async () => ((await engine.status(txId))?.hazards.length ?? 0) > 0, 10_000);
    // Driven by that process until it stops: not this one's, so it may settle it meanwhile.
    await other.stop();
    faults.commitUnavailable.clear();
  }

  /** What one-phase-commit.ts leaves when its participant cannot confirm: the registration and the hazard, no decision. */
  async function loneBranchWithHazard(txId: string, branch: BranchInfo, detail: string): Promise<void> {
    const log = logOn();
    await log.open();
    const at = Date.now() - 60_000;
    await log.append({ type: 'begin', txId, at, expiresAt: at + 1_000 });
    await log.append({ type: 'enlist', txId, at, branch });
    await log.append({ type: 'hazard', txId, at, branchId: branch.branchId, gid: branch.gid, participant: branch.participant, detail });
    await log.close();
  }

  const rows = () => cluster.withClient(async (c) => (await c.query<{ id: string }>('select id from items')).rows.map((r) => r.id), 'ledger');

  it('finishes the branch without a hazard, completes it durably, and keeps the hazard and the note in its history', async () => {
    const { txId, branches } = await strandedCommit();
    await hazardOnBranchTwo(txId, branches);
    expect(await cluster.preparedGids(PREFIX)).toEqual([branches[0].gid]);
    expect(await engine.admin.hazardousCount()).toBe(1);
    expect((await engine.admin.list({ state: 'heuristic' })).transactions.map((t) => t.id)).toEqual([txId]);

    const note = 'branch 2 re-applied by hand from the audit table (ticket OPS-42)';
    const settled = await engine.admin.settle(txId, { by: 'olga', note: `  ${note}\n` });
    expect(settled).toEqual({ txId, outcome: 'commit', finished: 1, hazards: 1 });
    // Branch 1 committed now (its row is there); branch 2's was rolled back behind the coordinator's back.
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
    expect(await rows()).toContain(branches[0].gid);
    expect(await rows()).not.toContain(branches[1].gid);

    // Stored before the answer, as another process reads it.
    const reader = logOn();
    await reader.open();
    const snapshot = await reader.get(txId);
    await reader.close();
    expect({ completed: snapshot?.completed, outcome: snapshot?.outcome, hazards: snapshot?.hazards.length }).toEqual({ completed: true, outcome: 'commit', hazards: 1 });
    expect(await engine.admin.hazardousCount()).toBe(0);
    expect((await engine.admin.list()).transactions.map((t) => t.id)).not.toContain(txId);
    expect((await engine.admin.list({ state: 'heuristic' })).transactions).toEqual([]);
    expect(await engine.status(txId)).toMatchObject({ state: 'completed', decision: 'commit', hazards: [{ branchId: 2, participant: 'ledger' }] });
    const history = await engine.admin.history(txId);
    expect(history.map((r) => r.type)).toEqual(['begin', 'enlist', 'enlist', 'decision', 'hazard', 'action', 'complete']);
    expect(history[5]).toMatchObject({ type: 'action', by: 'olga', action: 'settle', note });

    // Never driven again, and a second settle is refused as completed.
    expect(await engine.admin.recover({ waitMs: 0 })).toMatchObject({ unfinished: 0 });
    expect(await engine.admin.sweep()).toMatchObject({ seen: 0, resolved: 0 });
    await expect(engine.admin.settle(txId, { by: 'olga', note })).rejects.toMatchObject({ code: 'state-conflict', message: expect.stringMatching(/already completed \(commit\)/) });
    expect((await engine.admin.history(txId)).length).toBe(history.length);
  });

  it('refuses, changing nothing, until every branch without a hazard is finished and the hazard branch is known not prepared', async () => {
    const { txId, branches } = await strandedCommit();
    await hazardOnBranchTwo(txId, branches);
    const note = 'reconciled by hand';
    const refused = async (request: Parameters<TransactionEngine['admin']['settle']>[1], code: string, message: RegExp, id = txId) => {
      await expect(engine.admin.settle(id, request)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    };
    await refused({ by: 'olga', note: '   ' }, 'invalid-input', /^note is required/);
    await refused({ by: 'olga', note: 'x'.repeat(1001) }, 'invalid-input', /^note must be at most 1000/);
    await refused({ by: 'olga', note: 'fixed\u0000by hand' }, 'invalid-input', /^note must not contain control characters/);
    await refused({ by: 'olga', note, outcome: 'maybe' as never }, 'invalid-input', /^outcome must be one of commit, abort/);
    await refused({ by: 'olga', note }, 'invalid-input', /^id must be a transaction id/, 'not-a-uuid');
    await refused({ by: 'olga', note }, 'not-found', /no transaction/, uuidv7());
    await refused({ by: 'olga', note, outcome: 'abort' }, 'state-conflict', /is decided commit; it cannot be settled as abort/);

    faults.commitUnavailable.add(branches[0].gid);
    await refused({ by: 'olga', note }, 'participant-unavailable', new RegExp(`branch ${branches[0].gid} on ledger did not acknowledge commit`));
    faults.commitUnavailable.clear();
    faults.stateUnavailable.add(branches[1].gid);
    await refused({ by: 'olga', note }, 'participant-unavailable', new RegExp(`whether hazard branch ${branches[1].gid} on ledger is still prepared`));
    faults.stateUnavailable.clear();
    // The complete record is lost (a crash between the action record and it): still unfinished, with its hazard.
    failComplete = true;
    await expect(engine.admin.settle(txId, { by: 'olga', note })).rejects.toMatchObject({ code: 'log-unavailable' });
    failComplete = false;
    expect(await engine.status(txId)).toMatchObject({ state: 'committed', hazards: [{ branchId: 2 }] });
    expect(await engine.admin.hazardousCount()).toBe(1);
    // Settling again finishes it.
    expect(await engine.admin.settle(txId, { by: 'olga', note, outcome: 'commit' })).toMatchObject({ outcome: 'commit' });
    expect(await engine.admin.hazardousCount()).toBe(0);
    // Every request was recorded before it ran (those refused as invalid never reached the log).
    const actions = (await engine.admin.history(txId)).filter((r) => r.type === 'action');
    expect(actions.map((r) => r.type === 'action' && [r.action, r.note])).toEqual([
      ['settle', note], // outcome abort against the commit decision
      ['settle', note], // branch 1 unreachable
      ['settle', note], // hazard branch state unknown
      ['settle', note], // complete record lost
      ['settle', note], // settled
    ]);
  });

  it('refuses a transaction without a hazard (retry or resolve it), and one in phase 2 here', async () => {
    const { txId, branches } = await strandedCommit();
    await expect(engine.admin.settle(txId, { by: 'olga', note: 'n' })).rejects.toMatchObject({ code: 'state-conflict', message: expect.stringMatching(/has no heuristic hazard.*twopc retry.*twopc resolve/) });
    await cluster.withClient((c) => c.query(`rollback prepared '${branches[1].gid}'`), 'ledger');
    // Phase 2 here: branch 2 meets the hazard, branch 1 is retried (its database does not answer).
    faults.commitUnavailable.add(branches[0].gid);
    await engine.admin.retry(txId, 0);
    await waitFor('the hazard recorded', async () => ((await engine.status(txId))?.hazards.length ?? 0) > 0, 10_000);
    await expect(engine.admin.settle(txId, { by: 'olga', note: 'n' })).rejects.toMatchObject({ code: 'state-conflict', message: expect.stringMatching(/in phase 2 in this coordinator/) });
    faults.commitUnavailable.clear();
    await engine.admin.retry(txId, 5_000);
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
    expect(await engine.admin.settle(txId, { by: 'olga', note: 'n' })).toEqual({ txId, outcome: 'commit', finished: 1, hazards: 1 });
  });

  it('refuses a hazard branch that is still prepared: retry can finish it', async () => {
    const { txId, branches } = await strandedCommit();
    // The participant reports a hazard on branch 2, which is still prepared (an outcome it could not prove then).
    const log = logOn();
    await log.open();
    const other = engineOn(log);
    faults.commitHazard.add(branches[1].gid);
    expect(await other.admin.retry(txId, 5_000)).toMatchObject({ completed: false, hazards: 1 });
    await other.stop();
    faults.commitHazard.clear();
    expect(await cluster.preparedGids(PREFIX)).toEqual([branches[1].gid]);
    await expect(engine.admin.settle(txId, { by: 'olga', note: 'n' })).rejects.toMatchObject({
      code: 'state-conflict',
      message: expect.stringMatching(new RegExp(`hazard branch ${branches[1].gid} on ledger is still prepared.*twopc retry ${txId}`)),
    });
    expect(await cluster.preparedGids(PREFIX)).toEqual([branches[1].gid]);
    expect(await engine.admin.retry(txId, 5_000)).toMatchObject({ completed: true });
    expect(await rows()).toEqual(expect.arrayContaining(branches.map((b) => b.gid)));
  });

  it('an undecided transaction (a one-phase commit its participant could not confirm) takes the outcome the operator gives', async () => {
    // What one-phase-commit.ts leaves: its registration and the hazard, no decision. Its branch was rolled back.
    const txId = uuidv7();
    const branch: BranchInfo = { branchId: 1, gid: buildGid(PREFIX, txId, 1), participant: 'ledger' };
    await loneBranchWithHazard(txId, branch, 'the one-phase COMMIT answered a heuristic hazard');
    expect(await engine.admin.recover({ waitMs: 0 })).toMatchObject({ leftForLater: 1 });
    await expect(engine.commit(txId)).rejects.toMatchObject({ code: 'outcome-unknown' });

    await expect(engine.admin.settle(txId, { by: 'olga', note: 'found rolled back' })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'outcome' } });
    expect(await engine.admin.settle(txId, { by: 'olga', note: 'found rolled back', outcome: 'abort' })).toEqual({ txId, outcome: 'abort', finished: 0, hazards: 1 });
    expect(await engine.status(txId)).toMatchObject({ state: 'completed', decision: 'abort', hazards: [{ branchId: 1 }] });
    // A client's retried commit gets the outcome now.
    await expect(engine.commit(txId)).rejects.toMatchObject({ code: 'transaction-aborted' });
    expect(await engine.admin.hazardousCount()).toBe(0);
  });

  it('an undecided transaction whose branch proves it committed in one phase can only be settled as commit', async () => {
    // The one-phase COMMIT reached the database, but its answer was lost and the later read could not confirm it.
    const txId = uuidv7();
    const branch: BranchInfo = { branchId: 1, gid: buildGid(PREFIX, txId, 1), participant: 'ledger' };
    const client = await ledger.openBranch({ ...branch, txId });
    await client.query('insert into items (id) values ($1)', [branch.gid]);
    await ledger.commit({ ...branch, txId }, { onePhase: true });
    await loneBranchWithHazard(txId, branch, 'the one-phase COMMIT could not be confirmed');

    // An operator's mistaken "abort" would tell the client aborted for data that committed: refused, nothing decided.
    await expect(engine.admin.settle(txId, { by: 'olga', note: 'thought it was rolled back', outcome: 'abort' })).rejects.toMatchObject({
      code: 'state-conflict',
      message: expect.stringMatching(/proves it committed: .* can only be settled as commit/),
    });
    expect(await engine.status(txId)).toMatchObject({ state: 'active', decision: null });
    expect(await engine.admin.settle(txId, { by: 'olga', note: 'found committed', outcome: 'commit' })).toEqual({ txId, outcome: 'commit', finished: 0, hazards: 1 });
    await expect(engine.commit(txId)).resolves.toMatchObject({ state: 'committed' });
    expect(await rows()).toContain(branch.gid);
  });

  it('refuses a commit settle while a prepared branch of the transaction that its decision does not list holds its locks', async () => {
    const { txId, branches } = await strandedCommit();
    // Prepared under the transaction's id, registered nowhere (what no 2PC run produces: a hand-made or foreign branch).
    const stray: BranchInfo = { branchId: 9, gid: buildGid(PREFIX, txId, 9), participant: 'ledger' };
    const client = await ledger.openBranch({ ...stray, txId });
    await client.query('insert into items (id) values ($1)', [stray.gid]);
    await ledger.prepare({ ...stray, txId });
    await hazardOnBranchTwo(txId, branches);

    await expect(engine.admin.settle(txId, { by: 'olga', note: 'branch 2 re-applied' })).rejects.toMatchObject({
      code: 'state-conflict',
      message: expect.stringMatching(new RegExp(`branch ${stray.gid} on ledger .* is prepared but not in its commit decision`)),
    });
    expect(await engine.status(txId)).toMatchObject({ state: 'committed' });
    expect(await engine.admin.hazardousCount()).toBe(1);
    // Nor while the database cannot be listed: a stray there would be left prepared for good.
    await cluster.withClient((c) => c.query(`rollback prepared '${stray.gid}'`), 'ledger');
    failList = true;
    await expect(engine.admin.settle(txId, { by: 'olga', note: 'branch 2 re-applied' })).rejects.toMatchObject({ code: 'participant-unavailable', message: expect.stringMatching(/cannot list the prepared branches of ledger/) });
    failList = false;
    // Ended by hand, the settle goes through.
    expect(await engine.admin.settle(txId, { by: 'olga', note: 'branch 2 re-applied; stray 9 rolled back by hand' })).toEqual({ txId, outcome: 'commit', finished: 1, hazards: 1 });
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
  });
});
