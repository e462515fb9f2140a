import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { mintTxId } from '../../coordinator/engine/ports/owned-tx-id';
import { buildGid } from '../../coordinator/engine/ports/protocol';
import { TransactionEngine, type CarriedBranch } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { mintCarriedTxId } from '../../participant-sdk/src/client';
import { FakeParticipant } from './fake-participant';
import { losingFs } from './losing-fs';

/**
 * Carried abort at the engine (docs/protocol.md, "Carried abort"): an abort
 * that carries the registrations records an id the coordinator never heard
 * of, decides abort through the register and rolls its branches back; a
 * commit of the same id, before, after or at the same time, agrees with it.
 */
describe('carried abort (engine)', () => {
  let dir: string;
  let a: FakeParticipant;
  let b: FakeParticipant;
  let engine: TransactionEngine;

  const branch = (participant: string, txId: string, branchId: number): CarriedBranch => ({ participant, branchId, gid: buildGid('twopc', txId, branchId) });
  const pair = (txId: string) => [branch('a', txId, 11), branch('b', txId, 22)];
  const open = async (log = new FileDecisionLog({ dir }), carriedRegistration = true, extra: Record<string, unknown> = {}) => {
    const config = parseEngineConfig({ sweepIntervalMs: 0, phaseTwoBaseDelayMs: 1, phaseTwoMaxDelayMs: 5, commitWaitMs: 2_000, carriedRegistration, ...extra });
    engine = new TransactionEngine({ log, participants: new ParticipantRegistry([a, b]), config });
    return engine.start();
  };
  const outcomeOf = (p: Promise<unknown>) =>
    p.then(
      (v) => (v as { state: string }).state,
      (e: { code?: string }) => e.code ?? String(e),
    );

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-carried-abort-'));
    a = new FakeParticipant('a');
    b = new FakeParticipant('b');
  });
  afterEach(async () => {
    await engine.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('records an id it never heard of, decides abort through the register and rolls each branch back; a later commit is answered aborted and prepares nothing', async () => {
    await open();
    const id = mintCarriedTxId();
    const branches = pair(id);
    await expect(engine.abortCarried(id, branches, { message: 'user cancelled' })).resolves.toEqual({ txId: id, state: 'aborted' });
    expect([a.ops('rollback'), b.ops('rollback')]).toEqual([[branches[0].gid], [branches[1].gid]]);
    const history = await engine.admin.history(id);
    expect(history.map((r) => r.type)).toEqual(['begin', 'enlist', 'enlist', 'decision', 'complete']);
    expect(history.find((r) => r.type === 'decision')).toMatchObject({ outcome: 'abort', reason: { cause: 'application', message: 'user cancelled' } });

    await expect(engine.commitCarried(id, branches)).rejects.toMatchObject({ code: 'transaction-aborted' });
    // A retried abort is answered from the register.
    await expect(engine.abortCarried(id, branches)).resolves.toMatchObject({ state: 'aborted' });
    expect([...a.ops('prepare'), ...b.ops('prepare'), ...a.ops('commit'), ...b.ops('commit')]).toEqual([]);
  });

  it('answers 409 state-conflict to an abort after the commit decision, and leaves the commit as it was', async () => {
    await open();
    const id = mintCarriedTxId();
    await expect(engine.commitCarried(id, pair(id))).resolves.toMatchObject({ state: 'committed' });
    await expect(engine.abortCarried(id, pair(id))).rejects.toMatchObject({ code: 'state-conflict', details: { state: 'committed' } });
    expect([...a.ops('rollback'), ...b.ops('rollback')]).toEqual([]);
    expect((await engine.status(id))?.state).toBe('completed');
  });

  it('refuses an abort whose registrations differ from the transaction’s (running or logged), doing nothing', async () => {
    await open();
    const id = mintCarriedTxId();
    let release!: () => void;
    a.onPrepare = () => new Promise((r) => (release = () => r({ vote: 'yes' })));
    const committing = engine.commitCarried(id, pair(id));
    while (a.ops('prepare').length === 0) await new Promise((r) => setTimeout(r, 2));
    await expect(engine.abortCarried(id, [branch('a', id, 11)])).rejects.toMatchObject({ code: 'state-conflict' });
    release();
    await expect(committing).resolves.toMatchObject({ state: 'committed' });
    await expect(engine.abortCarried(id, [...pair(id), branch('b', id, 33)])).rejects.toMatchObject({ code: 'state-conflict' });
    expect([...a.ops('rollback'), ...b.ops('rollback')]).toEqual([]);
  });

  it('records nothing for an id outside the carried window, one with an owner tag, or a coordinator without carried registration', async () => {
    await open();
    const stale = mintCarriedTxId(Date.now() - 700_000);
    await expect(engine.abortCarried(stale, pair(stale))).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'id' } });
    await expect(engine.admin.history(stale)).rejects.toMatchObject({ code: 'not-found' });
    const tagged = mintTxId(42);
    await expect(engine.abortCarried(tagged, pair(tagged))).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'id' } });
    expect([...a.calls, ...b.calls]).toEqual([]);
    await engine.stop();
    await open(new FileDecisionLog({ dir }), false);
    const id = mintCarriedTxId();
    await expect(engine.abortCarried(id, pair(id))).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'registrations' } });
    expect([...a.calls, ...b.calls]).toEqual([]);
  });

  it('refuses an abort that would record a transaction at the memory caps (503 over-capacity), and still aborts one it runs', async () => {
    await open(new FileDecisionLog({ dir }), true, { maxActiveTransactions: 1 });
    const running = mintCarriedTxId();
    let release!: () => void;
    a.onPrepare = () => new Promise((r) => (release = () => r({ vote: 'yes' })));
    const committing = outcomeOf(engine.commitCarried(running, pair(running)));
    while (a.ops('prepare').length === 0) await new Promise((r) => setTimeout(r, 2));
    const id = mintCarriedTxId();
    await expect(engine.abortCarried(id, pair(id))).rejects.toMatchObject({ code: 'over-capacity' });
    await expect(engine.abortCarried(running, pair(running))).resolves.toMatchObject({ state: 'aborted' });
    release();
    await expect(committing).resolves.toBe('transaction-aborted');
  });

  it('decides the abort only once the registrations are durable: neither the abort nor a commit that joined it is answered, and no rollback leaves, before', async () => {
    const log = new FileDecisionLog({ dir });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const makeDurable = log.makeDurable.bind(log);
    let durable = false;
    log.makeDurable = async () => {
      await held;
      await makeDurable();
      durable = true;
    };
    await open(log);
    const id = mintCarriedTxId();
    const answered: string[] = [];
    const aborting = engine.abortCarried(id, pair(id)).then((r) => answered.push(`abort ${r.state}`));
    const committing = outcomeOf(engine.commitCarried(id, pair(id))).then((o) => answered.push(`commit ${o}`));
    await new Promise((r) => setTimeout(r, 50));
    expect({ answered, rollbacks: a.ops('rollback').length, decided: (await engine.admin.history(id)).some((r) => r.type === 'decision') }).toEqual({ answered: [], rollbacks: 0, decided: false });
    release();
    await Promise.all([aborting, committing]);
    expect(durable).toBe(true);
    expect(answered.sort()).toEqual(['abort aborted', 'commit transaction-aborted']);
    expect([...a.ops('prepare'), ...b.ops('prepare')]).toEqual([]);
  });

  it('tells no one "aborted" before a crash can no longer lose the transaction: a disk that drops the registrations fails the abort, and one that drops only the decision leaves recovery to abort it again', async () => {
    const disk = losingFs();
    await open(new FileDecisionLog({ dir, fs: disk.fs }));
    // The registrations' fdatasync fails and the disk drops them: the abort is not answered "aborted",
    // and nothing was rolled back under a decision that would be lost with them.
    const lost = mintCarriedTxId();
    disk.arm();
    await expect(outcomeOf(engine.abortCarried(lost, pair(lost)))).resolves.not.toBe('aborted');
    expect([...a.calls, ...b.calls]).toEqual([]);
    await engine.stop().catch(() => undefined);

    // A new process on a healthy disk. An abort answered "aborted" whose decision (written, never synced) is lost:
    const healthy = losingFs();
    await open(new FileDecisionLog({ dir, fs: healthy.fs }));
    const id = mintCarriedTxId();
    // The fake votes yes even after a rollback: as if no rollback had reached the branches.
    await expect(engine.abortCarried(id, pair(id))).resolves.toMatchObject({ state: 'aborted' });
    healthy.arm();
    const other = mintCarriedTxId();
    await expect(engine.commitCarried(other, pair(other))).rejects.toBeDefined();
    await engine.stop().catch(() => undefined);
    const restarted = await open();
    // Recovery found the registrations (durable before the decision) undecided, and aborted the transaction again.
    expect(restarted.recovery.decidedAbort).toBeGreaterThanOrEqual(1);
    expect(await engine.status(id)).toMatchObject({ decision: 'abort' });
    await expect(engine.commitCarried(id, pair(id))).rejects.toMatchObject({ code: 'transaction-aborted' });
    expect([...a.ops('prepare'), ...b.ops('prepare')].filter((g) => g.includes(id.replace(/-/g, '')))).toEqual([]);
  });

  it.each([
    ['abort first', 0],
    ['commit first', 1],
    ['commit first, abort while it prepares', 2],
    ['commit first, abort once every branch voted yes', 3],
  ])('a commit and an abort of one id at once end in one outcome that both answers and both participants agree on (%s)', async (_name, order) => {
    await open();
    const seen = new Set<string>();
    for (let round = 0; round < 20; round++) {
      const id = mintCarriedTxId();
      a.onPrepare = order === 2 ? () => new Promise((r) => setTimeout(() => r({ vote: 'yes' }), round % 4)) : () => ({ vote: 'yes' });
      let commit: Promise<string>;
      let abort: Promise<string>;
      if (order === 0) {
        abort = outcomeOf(engine.abortCarried(id, pair(id)));
        commit = outcomeOf(engine.commitCarried(id, pair(id)));
      } else {
        commit = outcomeOf(engine.commitCarried(id, pair(id)));
        const gids = pair(id).map((br) => br.gid);
        const reached = () => (order === 2 ? a.ops('prepare').includes(gids[0]) : order === 3 ? a.prepared.has(gids[0]) && b.prepared.has(gids[1]) : true);
        while (!reached() && !a.committed.has(gids[0])) await new Promise((r) => setImmediate(r));
        abort = outcomeOf(engine.abortCarried(id, pair(id)));
      }
      const outcomes = { commit: await commit, abort: await abort };
      seen.add(`${outcomes.commit}/${outcomes.abort}`);
      const gids = pair(id).map((br) => br.gid);
      const committed = gids.filter((g) => a.committed.has(g) || b.committed.has(g));
      const rolledBack = gids.filter((g) => a.rolledBack.has(g) || b.rolledBack.has(g));
      if (outcomes.commit === 'committed') {
        expect({ round, outcomes, committed, rolledBack }).toEqual({ round, outcomes: { commit: 'committed', abort: 'state-conflict' }, committed: gids, rolledBack: [] });
      } else {
        expect({ round, outcomes, committed }).toEqual({ round, outcomes: { commit: 'transaction-aborted', abort: 'aborted' }, committed: [] });
        expect(rolledBack).toEqual(gids);
      }
      if (order === 0) expect(outcomes.abort).toBe('aborted');
    }
    // The abort that finds the commit's decision on its way loses the register to it.
    if (order === 3) expect(seen.has('committed/state-conflict')).toBe(true);
  });
});
