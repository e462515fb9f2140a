import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { nodeLogFs } from '../../coordinator/log/file/log-fs';
import { FakeParticipant } from './fake-participant';

/**
 * Issue 12: on a single-instance log a transaction's begin record is not a
 * write of its own. It goes out with the transaction's first record (its
 * first enlist, or, for one that never got a branch, its abort decision or
 * its `complete`), in the same write, and still first in its history. A
 * transaction that has no branch yet has nothing to recover, so until then
 * the log holds nothing of it.
 */
describe('the begin record goes out with the first record', () => {
  const dirs: string[] = [];
  const engines: TransactionEngine[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.stop();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  async function start() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-begin-fold-'));
    dirs.push(dir);
    const writes: number[] = [];
    const real = nodeLogFs();
    const log = new FileDecisionLog({ dir, autoCompact: false, fs: { ...real, write: (fd, buffer, offset, length, position) => (writes.push(length), real.write(fd, buffer, offset, length, position)) } });
    const engine = new TransactionEngine({ log, participants: new ParticipantRegistry([new FakeParticipant('a'), new FakeParticipant('b')]), config: parseEngineConfig({ sweepIntervalMs: 0 }) });
    engines.push(engine);
    await engine.start();
    return { engine, log, writes };
  }

  /** Lets every write queued so far run (the writer starts on a microtask; its write goes through the thread pool). */
  const settle = () => new Promise((r) => setTimeout(r, 20));
  const types = async (log: FileDecisionLog, txId: string) => (await log.history(txId)).map((r) => r.type);

  it('begin writes nothing; the first enlist writes the begin and itself in one write', async () => {
    const { engine, log, writes } = await start();
    const before = writes.length;
    const tx = await engine.begin();
    await settle();
    expect({ writes: writes.length - before, inLog: await log.get(tx.id), runsHere: engine.runsHere(tx.id) }).toEqual({ writes: 0, inLog: undefined, runsHere: true });

    await engine.enlist(tx.id, 'a');
    expect({ writes: writes.length - before, history: await types(log, tx.id) }).toEqual({ writes: 1, history: ['begin', 'enlist'] });
    const snapshot = await log.get(tx.id);
    expect({ createdAt: snapshot?.createdAt, expiresAt: snapshot?.expiresAt }).toEqual({ createdAt: Date.parse(tx.createdAt), expiresAt: Date.parse(tx.expiresAt) });

    await engine.enlist(tx.id, 'b');
    await engine.commit(tx.id);
    await settle();
    expect(await types(log, tx.id)).toEqual(['begin', 'enlist', 'enlist', 'decision', 'complete']);
  });

  it('a transaction that ends without a branch still gets its begin first: committed, aborted, or timed out', async () => {
    const { engine, log } = await start();
    const committed = await engine.begin();
    await engine.commit(committed.id);
    const aborted = await engine.begin();
    await engine.abort(aborted.id);
    const expired = await engine.begin({ timeoutMs: 1 });
    for (let i = 0; i < 100 && engine.runsHere(expired.id); i++) await settle();
    await settle();
    expect({
      committed: await types(log, committed.id),
      aborted: await types(log, aborted.id),
      expired: await types(log, expired.id),
      outcomes: [(await log.get(committed.id))?.outcome, (await log.get(aborted.id))?.outcome, (await log.get(expired.id))?.outcome],
    }).toEqual({
      committed: ['begin', 'complete'],
      aborted: ['begin', 'decision', 'complete'],
      expired: ['begin', 'decision', 'complete'],
      outcomes: ['commit', 'abort', 'abort'],
    });
  });

  it('a restart finds nothing of a transaction begun without a branch, and recovers one with a branch', async () => {
    const { engine, log } = await start();
    const bare = await engine.begin({ timeoutMs: 60_000 });
    const enlisted = await engine.begin({ timeoutMs: 60_000 });
    await engine.enlist(enlisted.id, 'a');
    const dir = log.dir;
    await log.close();
    const reopened = new FileDecisionLog({ dir, autoCompact: false });
    await reopened.open();
    try {
      expect({ bare: await reopened.get(bare.id), enlisted: (await reopened.unfinished()).map((s) => [s.txId, s.branches.length]) }).toEqual({ bare: undefined, enlisted: [[enlisted.id, 1]] });
    } finally {
      await reopened.close();
    }
    // The engine's log is closed under it (as a crash leaves it): stopping it only fails its aborts.
    await engines.splice(0)[0].stop().catch(() => undefined);
  });

  it('an operator looking at or acting on a branchless running transaction writes its begin: it has a history, and the action is recorded', async () => {
    const { engine, log } = await start();
    const tx = await engine.begin();
    expect(await engine.admin.history(tx.id)).toMatchObject([{ type: 'begin', txId: tx.id }]);
    await expect(engine.admin.phaseTwo(tx.id)).resolves.toMatchObject({ txId: tx.id, driving: false });
    await expect(engine.admin.retry(tx.id, 0, 'alice')).resolves.toMatchObject({ retried: false, decision: null });
    expect(await types(log, tx.id)).toEqual(['begin', 'action']);
    // The begin is written once: the first enlist does not write it again.
    await engine.enlist(tx.id, 'a');
    expect(await types(log, tx.id)).toEqual(['begin', 'action', 'enlist']);
  });
});
