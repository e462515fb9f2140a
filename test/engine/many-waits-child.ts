import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { FakeParticipant } from './fake-participant';

/**
 * Run as a child process by many-waits-one-stop-signal.test.ts: Node's
 * process warnings are not visible inside a jest sandbox. TRANSACTIONS
 * commits at once, each with a branch that votes no at once and one whose
 * PREPARE answers only once every abort is waiting for it, so each abort's phase 2 waits on that PREPARE (and on
 * the engine's stop signal) at the same time. Prints one JSON line.
 */
async function main(): Promise<void> {
  const count = Number(process.env.TRANSACTIONS ?? '24');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-many-waits-'));
  const fast = new FakeParticipant('fast');
  fast.onPrepare = () => ({ vote: 'no', reason: 'refused' });
  const slow = new FakeParticipant('slow');
  // Every slow PREPARE answers only once all the aborts wait for it.
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  slow.onPrepare = () => released.then(() => ({ vote: 'yes' as const }));
  const config = parseEngineConfig({ sweepIntervalMs: 0, commitWaitMs: 5_000 });
  const engine = new TransactionEngine({ log: new FileDecisionLog({ dir }), participants: new ParticipantRegistry([fast, slow]), config });
  await engine.start();
  const commits: Array<Promise<unknown>> = [];
  for (let i = 0; i < count; i += 1) {
    const tx = await engine.begin();
    await engine.enlist(tx.id, 'slow');
    await engine.enlist(tx.id, 'fast');
    commits.push(engine.commit(tx.id).then(() => 'committed', (e: Error) => e.name));
  }
  while (fast.ops('prepare').length < count) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  release();
  const outcomes = await Promise.all(commits);
  await new Promise((r) => setTimeout(r, 200));
  await engine.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ outcomes: [...new Set(outcomes)], rolledBack: slow.rolledBack.size })}\n`);
}

void main();
