import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TwopcError } from '../../coordinator/engine/ports/protocol';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { FakeParticipant } from './fake-participant';

describe('one-phase commit retries', () => {
  it('warn about an unknown outcome at most once per participant per interval, however often they ask again', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-one-phase-warn-'));
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }) };
    const db = new FakeParticipant('db');
    let failures = 6;
    db.onCommit = () => {
      if (failures-- > 0) throw new TwopcError('outcome-unknown', 'participant db: POST /commit: no answer');
    };
    const config = parseEngineConfig({ sweepIntervalMs: 0, phaseTwoBaseDelayMs: 1, phaseTwoMaxDelayMs: 2, commitWaitMs: 5_000 });
    const engine = new TransactionEngine({ log: new FileDecisionLog({ dir }), participants: new ParticipantRegistry([db]), config, logger });
    try {
      await engine.start();
      const tx = await engine.begin();
      await engine.enlist(tx.id, 'db');
      await expect(engine.commit(tx.id)).resolves.toMatchObject({ state: 'committed' });
      expect(db.calls.filter((c) => c.op === 'commit')).toHaveLength(7);
      const asked = warnings.filter((w) => w.message.includes('asking again'));
      expect(asked).toHaveLength(1);
      expect(asked[0].fields).toMatchObject({ participant: 'db', heldBack: 0 });
    } finally {
      await engine.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
