import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { nodeLogFs } from '../../coordinator/log/file/log-fs';

/**
 * Issue 12: a `complete` record after a decision record is waited for by no
 * caller on a transaction's path, so the file log does not start a write for it: it
 * joins whatever is written next in the same turn of the event loop (at low
 * load, the next transaction's first records), and is written on its own at
 * the end of the turn only if nothing else was. Every other record starts
 * its write at once, as before, and so does a `complete` with no decision
 * before it (read-only, branchless, one-phase): it is the only proof of an
 * outcome already answered.
 */
describe('file log: a complete rides with the next write', () => {
  let dir: string;
  let log: FileDecisionLog;
  let writes: Buffer[];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-complete-rides-'));
    writes = [];
    const real = nodeLogFs();
    log = new FileDecisionLog({
      dir,
      autoCompact: false,
      fs: { ...real, write: (fd, buffer, offset, length, position) => (writes.push(Buffer.from(buffer.subarray(offset, offset + length))), real.write(fd, buffer, offset, length, position)) },
    });
    await log.open();
  });

  afterEach(async () => {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const txA = '01890a5d-ac96-774b-bcce-b302099a8057';
  const txB = '01890a5d-ac96-774b-bcce-b302099a8058';
  const branch = (txId: string) => ({ branchId: 1, gid: `tp_${txId.replace(/-/g, '')}_1`, participant: 'a' });
  /** begin, enlist and a forced abort decision of txA: what precedes a two-phase transaction's complete. */
  const decided = async () => {
    await log.append({ type: 'begin', txId: txA, at: 1, expiresAt: 10_000_000_000_000 });
    await log.append({ type: 'enlist', txId: txA, at: 1, branch: branch(txA) });
    await log.decide({ txId: txA, at: 1, outcome: 'abort', source: 'engine', branches: [branch(txA)] });
  };

  it('a complete and the next transaction’s records appended in the same turn go out in one write, complete first', async () => {
    await decided();
    const before = writes.length;
    const completed = log.append({ type: 'complete', txId: txA, at: 2, outcome: 'abort' });
    // Later in the same turn (as the next transaction starts after the previous one answered).
    for (let i = 0; i < 10; i++) await Promise.resolve();
    const next = [log.append({ type: 'begin', txId: txB, at: 3, expiresAt: 10_000_000_000_000 }), log.append({ type: 'enlist', txId: txB, at: 3, branch: branch(txB) })];
    await Promise.all([completed, ...next]);
    const text = writes.slice(before).map((w) => w.toString('latin1'));
    expect({ writes: text.length, completeFirst: text[0].indexOf('"complete"') < text[0].indexOf(txB) }).toEqual({ writes: 1, completeFirst: true });
    expect((await log.get(txA))?.completed).toBe(true);
  });

  it('a complete with nothing after it is written at the end of the turn, on its own', async () => {
    await decided();
    const before = writes.length;
    const completed = log.append({ type: 'complete', txId: txA, at: 2, outcome: 'abort' });
    // Not started in this run of microtasks: a record appended by then would have joined it.
    for (let i = 0; i < 10; i++) await Promise.resolve();
    const duringTurn = writes.length - before;
    await completed;
    expect({ duringTurn, after: writes.length - before }).toEqual({ duringTurn: 0, after: 1 });
  });

  it('a complete with no decision before it (the only proof of its outcome) starts its write at once', async () => {
    await log.append({ type: 'begin', txId: txA, at: 1, expiresAt: 10_000_000_000_000 });
    const before = writes.length;
    const completed = log.append({ type: 'complete', txId: txA, at: 2, outcome: 'commit' });
    for (let i = 0; i < 10; i++) await Promise.resolve();
    const duringTurn = writes.length - before;
    await completed;
    expect({ duringTurn, after: writes.length - before }).toEqual({ duringTurn: 1, after: 1 });
  });
});
