import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { parseEngineConfig, EngineConfigInput } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { waitAtMost } from '../../coordinator/engine/ports/backoff';
import { TransactionAbortedError, TwopcError } from '../../coordinator/engine/ports/protocol';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { buildGid } from '../../participant-sdk/src/gid';
import { FakeParticipant } from './fake-participant';

describe('TransactionEngine (scripted participants, file log)', () => {
  let dir: string;
  let a: FakeParticipant;
  let b: FakeParticipant;
  let engine: TransactionEngine;
  const engines: TransactionEngine[] = [];

  async function startEngine(config: EngineConfigInput = {}): Promise<TransactionEngine> {
    const e = new TransactionEngine({
      log: new FileDecisionLog({ dir }),
      participants: new ParticipantRegistry([a, b]),
      config: parseEngineConfig({ sweepIntervalMs: 0, phaseTwoBaseDelayMs: 1, phaseTwoMaxDelayMs: 5, commitWaitMs: 2_000, ...config }),
    });
    engines.push(e);
    await e.start();
    return e;
  }

  async function twoBranches(e = engine, timeoutMs?: number) {
    const tx = await e.begin(timeoutMs ? { timeoutMs } : {});
    const ba = await e.enlist(tx.id, 'a');
    const bb = await e.enlist(tx.id, 'b');
    return { id: tx.id, ga: ba.gid, gb: bb.gid };
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-engine-'));
    a = new FakeParticipant('a');
    b = new FakeParticipant('b');
    engine = await startEngine();
  });

  afterEach(async () => {
    for (const e of engines.splice(0)) await e.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('commits: prepares both, forces the decision, commits both, completes', async () => {
    const { id, ga, gb } = await twoBranches();
    const result = await engine.commit(id);
    expect(result).toEqual({ txId: id, state: 'committed', phaseTwoPending: false });
    expect([a.committed.has(ga), b.committed.has(gb)]).toEqual([true, true]);
    const status = await engine.status(id);
    expect(status).toMatchObject({ state: 'completed', decision: 'commit' });
    expect(status?.branches.map((x) => x.state)).toEqual(['committed', 'committed']);
    // Commit is idempotent by id.
    await expect(engine.commit(id)).resolves.toMatchObject({ state: 'committed' });
  });

  it('takes a vote a participant written in plain JavaScript answers directly, not as a promise', async () => {
    const { id, ga, gb } = await twoBranches();
    // Participant is a public port: a JavaScript one may return its vote as a value.
    for (const p of [a, b]) p.prepare = ((branch: { gid: string }) => (p.prepared.set(branch.gid, Date.now()), { vote: 'yes' })) as unknown as FakeParticipant['prepare'];
    await expect(engine.commit(id)).resolves.toMatchObject({ state: 'committed' });
    expect([a.committed.has(ga), b.committed.has(gb)]).toEqual([true, true]);
  });

  it('aborts on a no vote and names the branch and reason', async () => {
    b.onPrepare = () => ({ vote: 'no', reason: 'insufficient funds', sqlState: '23514' });
    const { id, ga, gb } = await twoBranches();
    const error = await engine.commit(id).catch((e) => e);
    expect(error).toBeInstanceOf(TransactionAbortedError);
    expect(error.reason).toMatchObject({ cause: 'vote-no', participant: 'b', branchId: 2, message: 'insufficient funds', sqlState: '23514' });
    expect(a.rolledBack.has(ga)).toBe(true);
    expect(b.rolledBack.has(gb)).toBe(true);
    expect(a.committed.size + b.committed.size).toBe(0);
    await expect(engine.commit(id)).rejects.toBeInstanceOf(TransactionAbortedError);
    expect(await engine.status(id)).toMatchObject({ state: 'completed', decision: 'abort' });
  });

  it('a prepare that throws counts as a no vote', async () => {
    a.onPrepare = () => {
      throw new Error('connection reset');
    };
    const { id } = await twoBranches();
    await expect(engine.commit(id)).rejects.toMatchObject({ reason: { cause: 'vote-no', participant: 'a', message: 'connection reset' } });
  });

  it('read-only votes skip phase 2 and need no decision', async () => {
    a.onPrepare = () => ({ vote: 'read-only' });
    const { id, gb } = await twoBranches();
    await engine.commit(id);
    expect(a.ops('commit')).toEqual([]);
    expect(b.committed.has(gb)).toBe(true);
  });

  it('one branch commits in one phase without a decision record; switchable', async () => {
    const tx = await engine.begin();
    const branch = await engine.enlist(tx.id, 'a');
    await engine.commit(tx.id);
    expect(a.calls).toEqual([{ op: 'commit', gid: branch.gid, onePhase: true }]);
    expect((await engine.status(tx.id))?.state).toBe('completed');

    await engine.stop();
    const twoPhase = await startEngine({ onePhaseCommit: false });
    const tx2 = await twoPhase.begin();
    const branch2 = await twoPhase.enlist(tx2.id, 'a');
    await twoPhase.commit(tx2.id);
    expect(a.calls.filter((c) => c.gid === branch2.gid).map((c) => c.op)).toEqual(['prepare', 'commit']);
  });

  it('a failed one-phase commit is an abort with the reason', async () => {
    a.onCommit = (branch) => {
      a.rolledBack.add(branch.gid);
    };
    const tx = await engine.begin();
    await engine.enlist(tx.id, 'a');
    await expect(engine.commit(tx.id)).rejects.toMatchObject({ reason: { cause: 'vote-no', participant: 'a' } });
    expect((await engine.status(tx.id))?.decision).toBe('abort');
  });

  it('a one-phase commit whose answer was lost is asked again, never presumed aborted', async () => {
    let lost = true;
    a.onCommit = () => {
      if (lost) throw new TwopcError('outcome-unknown', 'connection lost during COMMIT');
    };
    await engine.stop();
    engine = await startEngine({ commitWaitMs: 50 });
    const tx = await engine.begin();
    const branch = await engine.enlist(tx.id, 'a');
    await expect(engine.commit(tx.id)).rejects.toMatchObject({ code: 'outcome-unknown' });
    await expect(engine.abort(tx.id)).rejects.toMatchObject({ code: 'state-conflict' });
    expect((await engine.status(tx.id))?.decision).toBeNull();
    lost = false;
    await expect(engine.commit(tx.id)).resolves.toMatchObject({ state: 'committed' });
    expect(a.committed.has(branch.gid)).toBe(true);
    // Completed with no decision record: committed in one phase, so an abort now is refused.
    await expect(engine.abort(tx.id)).rejects.toMatchObject({ code: 'state-conflict', details: { state: 'committed' } });
  });

  it('abort racing a one-phase commit, in either order: both answers and the branch agree', async () => {
    for (let i = 0; i < 30; i += 1) {
      const tx = await engine.begin();
      const { gid } = await engine.enlist(tx.id, 'a');
      const calls = i % 2 === 0 ? [engine.abort(tx.id), engine.commit(tx.id)] : [engine.commit(tx.id), engine.abort(tx.id)];
      const [first, second] = await Promise.allSettled(calls);
      const [abort, commit] = i % 2 === 0 ? [first, second] : [second, first];
      const committed = commit.status === 'fulfilled';
      expect(abort.status === 'fulfilled').toBe(!committed);
      expect(a.committed.has(gid)).toBe(committed);
      expect((await engine.status(tx.id))?.decision ?? 'commit').toBe(committed ? 'commit' : 'abort');
    }
  });

  it('abort racing a two-phase commit that waits for its registrations: no PREPARE after the abort', async () => {
    for (let i = 0; i < 20; i += 1) {
      const tx = await engine.begin();
      const ga = (await engine.enlist(tx.id, 'a', { awaitWrite: false })).gid;
      const gb = (await engine.enlist(tx.id, 'b', { awaitWrite: false })).gid;
      const [abort, commit] = await Promise.allSettled([engine.abort(tx.id), engine.commit(tx.id)]);
      expect(abort.status).toBe('fulfilled');
      expect(commit.status).toBe('rejected');
      expect([...a.ops('prepare'), ...b.ops('prepare')].filter((g) => g === ga || g === gb)).toEqual([]);
    }
  });

  it('enlisting into a transaction that ended is a state conflict, into an unknown one not-found', async () => {
    const { id } = await twoBranches();
    await engine.commit(id);
    await expect(engine.enlist(id, 'a')).rejects.toMatchObject({ code: 'state-conflict', details: { state: 'completed' } });
    await expect(engine.enlist(uuidv7(), 'a')).rejects.toMatchObject({ code: 'not-found' });
  });

  it('times out an active transaction and rolls its branches back', async () => {
    const { id, ga, gb } = await twoBranches(engine, 50);
    await new Promise((r) => setTimeout(r, 150));
    expect(a.rolledBack.has(ga) && b.rolledBack.has(gb)).toBe(true);
    await expect(engine.commit(id)).rejects.toMatchObject({ reason: { cause: 'timeout' } });
    await expect(engine.enlist(id, 'a')).rejects.toBeInstanceOf(TwopcError);
  });

  it('a participant that never answers PREPARE cannot hold the decision back past the timeout', async () => {
    let release!: () => void;
    b.onPrepare = () => new Promise((resolve) => (release = () => resolve({ vote: 'yes' })));
    const { id, ga, gb } = await twoBranches(engine, 100);
    const outcome = engine.commit(id).catch((e) => e);
    await new Promise((r) => setTimeout(r, 200));
    // The hung PREPARE answers late: the rollback waits for it, so nothing stays prepared.
    release();
    expect(await outcome).toMatchObject({ reason: { cause: 'timeout' } });
    await new Promise((r) => setTimeout(r, 50));
    expect(a.rolledBack.has(ga) && b.rolledBack.has(gb)).toBe(true);
    expect(b.prepared.size).toBe(0);
  });

  it('stop() does not hang on a PREPARE that never answers', async () => {
    b.onPrepare = () => new Promise(() => undefined);
    const { id } = await twoBranches(engine, 50);
    await expect(engine.commit(id)).rejects.toMatchObject({ reason: { cause: 'timeout' } });
    await expect(waitAtMost(engine.stop(), 2_000)).resolves.toBeUndefined();
    a.prepared.clear();
  });

  it('retries phase 2 with backoff until acknowledged', async () => {
    let failures = 3;
    b.onCommit = () => {
      if (failures-- > 0) throw new TwopcError('outcome-unknown', 'connection lost');
    };
    const { id, gb } = await twoBranches();
    await expect(engine.commit(id)).resolves.toMatchObject({ phaseTwoPending: false });
    expect(b.ops('commit')).toEqual([gb, gb, gb, gb]);
    expect(b.committed.has(gb)).toBe(true);
  });

  it('answers "committed, phase 2 pending" when a participant stays down, and finishes later', async () => {
    let down = true;
    b.onCommit = () => {
      if (down) throw new TwopcError('outcome-unknown', 'down');
    };
    await engine.stop();
    engine = await startEngine({ commitWaitMs: 50 });
    const { id, gb } = await twoBranches();
    await expect(engine.commit(id)).resolves.toEqual({ txId: id, state: 'committed', phaseTwoPending: true });
    expect((await engine.status(id))?.state).toBe('committed');
    down = false;
    await engine.admin.retry(id);
    await new Promise((r) => setTimeout(r, 50));
    expect(b.committed.has(gb)).toBe(true);
    expect((await engine.status(id))?.state).toBe('completed');
  });

  it('records a heuristic hazard and leaves the transaction for an operator', async () => {
    b.onCommit = () => {
      throw new TwopcError('heuristic-hazard', '42704 and no marker');
    };
    const { id, ga, gb } = await twoBranches();
    await engine.commit(id);
    const status = await engine.status(id);
    expect(status?.state).toBe('committed');
    expect(status?.hazards).toEqual([expect.objectContaining({ gid: gb, participant: 'b', detail: '42704 and no marker' })]);
    expect(status?.branches.find((x) => x.gid === gb)?.state).toBe('heuristic-hazard');
    // The branch that did commit says so after the drive ended, not "prepared": the operator reconciling b
    // must not be sent to branch a, which is done.
    expect(status?.branches.find((x) => x.gid === ga)?.state).toBe('committed');
    const listed = (await engine.admin.list()).transactions.find((t) => t.id === id);
    expect(listed?.branches.map((x) => x.state)).toEqual(['committed', 'heuristic-hazard']);
    // An operator's retry that meets the hazard again keeps what was acknowledged before.
    await expect(engine.admin.retry(id, 1_000)).resolves.toMatchObject({ retried: true, completed: false, hazards: 1 });
    expect((await engine.status(id))?.branches.map((x) => x.state)).toEqual(['committed', 'heuristic-hazard']);
    // Two hazard records now (each drive met it), one branch: a retry answered before its drive ends counts branches.
    expect((await engine.status(id))?.hazards).toHaveLength(2);
    let meetAgain!: () => void;
    b.onCommit = () => new Promise<void>((_, reject) => (meetAgain = () => reject(new TwopcError('heuristic-hazard', 'still no marker'))));
    await expect(engine.admin.retry(id, 0)).resolves.toMatchObject({ retried: true, completed: false, hazards: 1 });
    b.onCommit = () => {
      throw new TwopcError('heuristic-hazard', 'still no marker');
    };
    meetAgain();
    // Joins that drive (or runs one more) and waits for it to end: nothing records after the test.
    await expect(engine.admin.retry(id, 2_000)).resolves.toMatchObject({ completed: false, hazards: 1 });
  });

  it('abort racing commit: one outcome wins and every branch follows it', async () => {
    for (let i = 0; i < 20; i += 1) {
      const { id, ga, gb } = await twoBranches();
      const [commit, abort] = await Promise.allSettled([engine.commit(id), engine.abort(id)]);
      const committed = commit.status === 'fulfilled';
      expect(abort.status === 'fulfilled').toBe(!committed);
      expect(a.committed.has(ga)).toBe(committed);
      expect(b.committed.has(gb)).toBe(committed);
      expect(a.prepared.has(ga) || b.prepared.has(gb)).toBe(false);
    }
  });

  it('refuses bad input with codes', async () => {
    await expect(engine.begin({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'timeoutMs' } });
    await expect(engine.commit('nope')).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(engine.commit(uuidv7())).rejects.toMatchObject({ code: 'not-found' });
    const tx = await engine.begin();
    await expect(engine.enlist(tx.id, 'zzz')).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'participant' } });
  });

  it('recovery: resumes a commit decision, aborts what was undecided', async () => {
    // Leave one transaction decided-commit with phase 2 unfinished, one undecided and prepared.
    let blocked = true;
    b.onCommit = () => {
      if (blocked) throw new TwopcError('outcome-unknown', 'down');
    };
    await engine.stop();
    engine = await startEngine({ commitWaitMs: 10 });
    const committed = await twoBranches();
    await engine.commit(committed.id);
    const undecided = await twoBranches();
    await a.prepare({ ...(await engine.status(undecided.id))!.branches[0], url: undefined, txId: undecided.id });
    await engine.stop();

    blocked = false;
    const restarted = await startEngine();
    expect(restarted.ready).toBe(true);
    expect(b.committed.has(committed.gb)).toBe(true);
    expect(a.rolledBack.has(undecided.ga)).toBe(true);
    expect(a.prepared.size + b.prepared.size).toBe(0);
    expect((await restarted.status(committed.id))?.state).toBe('completed');
    expect((await restarted.status(undecided.id))?.decision).toBe('abort');
  });

  it('sweep: a prepared branch of ours with no decision and past its grace is aborted; others are left', async () => {
    await engine.stop();
    engine = await startEngine({ maxTimeoutMs: 1_000, defaultTimeoutMs: 1_000, sweepGraceMs: 0 });
    const oldId = uuidv7({ msecs: Date.now() - 10_000 });
    const youngId = uuidv7();
    const oldGid = buildGid('twopc', oldId, 1);
    const youngGid = buildGid('twopc', youngId, 1);
    const foreign = `other_${oldId.replace(/-/g, '')}_1`;
    a.prepared.set(oldGid, Date.now());
    a.prepared.set(youngGid, Date.now());
    a.prepared.set(foreign, Date.now());
    const report = await engine.admin.sweep();
    await new Promise((r) => setTimeout(r, 20));
    expect(report).toMatchObject({ decidedAbort: 1, skipped: 1 });
    expect(a.rolledBack.has(oldGid)).toBe(true);
    expect(a.prepared.has(youngGid) && a.prepared.has(foreign)).toBe(true);
    expect((await engine.status(oldId))?.decision).toBe('abort');
    a.prepared.clear();
  });

  describe('operator actions', () => {
    /**
     * A transaction left undecided with both branches prepared, as a SIGKILL after phase 1
     * leaves it, and an engine on that log that has not run recovery (the operator acts first).
     */
    async function strandedPrepared() {
      await engine.stop();
      const txDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-engine-stranded-'));
      const id = uuidv7();
      const [ga, gb] = [buildGid('twopc', id, 1), buildGid('twopc', id, 2)];
      const log = new FileDecisionLog({ dir: txDir });
      await log.open();
      await log.append({ type: 'begin', txId: id, at: Date.now(), expiresAt: Date.now() + 30_000 });
      await log.append({ type: 'enlist', txId: id, at: Date.now(), branch: { branchId: 1, gid: ga, participant: 'a' } });
      await log.append({ type: 'enlist', txId: id, at: Date.now(), branch: { branchId: 2, gid: gb, participant: 'b' } });
      await log.close();
      a.prepared.set(ga, Date.now());
      b.prepared.set(gb, Date.now());
      const reopened = new FileDecisionLog({ dir: txDir });
      const other = new TransactionEngine({ log: reopened, participants: new ParticipantRegistry([a, b]), config: parseEngineConfig({ sweepIntervalMs: 0 }) });
      engines.push(other);
      await reopened.open();
      return { id, ga, gb, other, cleanup: () => fs.rmSync(txDir, { recursive: true, force: true }) };
    }

    it('resolve records the operator decision through the register and never contradicts it', async () => {
      const { id: txId, ga, gb, other, cleanup } = await strandedPrepared();
      const tx = { id: txId, ga, gb };
      const resolved = await other.admin.resolve(tx.id, 'commit');
      expect(resolved).toMatchObject({ decision: 'commit', alreadyDecided: false, completed: true });
      expect(a.committed.has(tx.ga) && b.committed.has(tx.gb)).toBe(true);
      await expect(other.admin.resolve(tx.id, 'abort')).rejects.toMatchObject({ code: 'state-conflict', details: { decision: 'commit' } });
      await expect(other.admin.resolve(tx.id, 'commit')).resolves.toMatchObject({ alreadyDecided: true });
      const history = await other.admin.history(tx.id);
      expect(history.map((r) => r.type)).toEqual(['begin', 'enlist', 'enlist', 'decision', 'complete']);
      expect(history.find((r) => r.type === 'decision')).toMatchObject({ outcome: 'commit', source: 'admin' });
      await other.stop();
      cleanup();
    });

    it('refuses an operator commit when a branch never prepared (it would be partial)', async () => {
      const { id, ga, gb, other, cleanup } = await strandedPrepared();
      b.prepared.delete(gb);
      await expect(other.admin.resolve(id, 'commit')).rejects.toMatchObject({ code: 'state-conflict', details: { gid: gb, state: 'unknown' } });
      expect(a.committed.has(ga)).toBe(false);
      await expect(other.admin.resolve(id, 'abort')).resolves.toMatchObject({ decision: 'abort' });
      expect(a.rolledBack.has(ga)).toBe(true);
      await other.stop();
      cleanup();
    });

    it('an operator abort of a stranded transaction rolls back its prepared branches', async () => {
      const { id, ga, gb, other, cleanup } = await strandedPrepared();
      await expect(other.admin.resolve(id, 'abort')).resolves.toMatchObject({ decision: 'abort', completed: true });
      expect(a.rolledBack.has(ga) && b.rolledBack.has(gb)).toBe(true);
      await expect(other.admin.resolve(id, 'commit')).rejects.toMatchObject({ code: 'state-conflict' });
      await other.stop();
      cleanup();
    });

    it('finds orphans and rolls them back through the register; a decided commit is committed instead', async () => {
      const aborted = buildGid('twopc', uuidv7({ msecs: Date.now() - 60_000 }), 1);
      a.prepared.set(aborted, Date.now());
      const { id, gb } = await twoBranches();
      b.onCommit = () => {
        throw new TwopcError('outcome-unknown', 'down');
      };
      await engine.stop();
      engine = await startEngine({ commitWaitMs: 10 });
      await engine.commit(id).catch(() => undefined);
      void gb;
      const scan = await engine.admin.orphans();
      expect(scan.orphans.map((o) => o.gid)).toContain(aborted);
      const orphan = scan.orphans.find((o) => o.gid === aborted)!;
      expect(orphan).toMatchObject({ participant: 'a', known: false, decision: null });
      b.onCommit = () => undefined;
      const done = await engine.admin.rollbackOrphans();
      expect(done.find((r) => r.gid === aborted)).toMatchObject({ outcome: 'rolled-back' });
      expect(a.rolledBack.has(aborted)).toBe(true);
      expect((await engine.admin.orphans()).orphans).toEqual([]);
    });
  });
});
