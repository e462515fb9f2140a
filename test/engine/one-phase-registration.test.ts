import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { FakeParticipant } from './fake-participant';
import { losingFs } from './losing-fs';

/**
 * A one-phase COMMIT is the decision: no decision record is forced for it.
 * Its registration must still be durable before the COMMIT goes out, or a
 * crash that loses unsynced writes (an fdatasync that fails and drops dirty
 * pages, a power loss) leaves recovery a committed transaction it would
 * presume aborted.
 */

describe('one-phase commit and the durability of its registration', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-one-phase-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('survives a lost page cache right after the COMMIT: recovery finds the branch and learns it committed', async () => {
    const disk = losingFs();
    const db = new FakeParticipant('db');
    const config = parseEngineConfig({ sweepIntervalMs: 0, phaseTwoBaseDelayMs: 1, phaseTwoMaxDelayMs: 5, commitWaitMs: 2_000 });
    const engine = new TransactionEngine({ log: new FileDecisionLog({ dir, fs: disk.fs }), participants: new ParticipantRegistry([db]), config });
    await engine.start();
    const tx = await engine.begin();
    const branch = await engine.enlist(tx.id, 'db');
    await expect(engine.commit(tx.id)).resolves.toMatchObject({ state: 'committed' });
    expect(db.calls).toContainEqual({ op: 'commit', gid: branch.gid, onePhase: true });

    // The next fdatasync fails and the disk drops whatever was not synced (the `complete` record among it).
    disk.arm();
    const other = await engine.begin();
    await engine.enlist(other.id, 'db');
    await engine.enlist(other.id, 'db');
    await expect(engine.commit(other.id)).rejects.toMatchObject({ code: 'outcome-unknown' });
    await engine.stop().catch(() => undefined);

    // A new process on a healthy disk.
    const again = new TransactionEngine({ log: new FileDecisionLog({ dir }), participants: new ParticipantRegistry([db]), config });
    const start = await again.start();
    try {
      expect(start.recovery.decidedCommit).toBe(1);
      expect(await again.status(tx.id)).toMatchObject({ decision: 'commit' });
    } finally {
      await again.stop();
    }
  });
});
