import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { isTwopcError } from '../../coordinator/engine/ports/protocol';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { Semaphore } from '../../coordinator/engine/ports/backoff';
import { FakeParticipant } from './fake-participant';

/**
 * Issue 16, item 1: memory is capped. Past `maxActiveTransactions` running
 * transactions, or `maxRememberedOutcomes` outcomes held for their retention
 * period, a begin is refused with `over-capacity` (503) instead of memory
 * growing without bound; what was begun still ends, and room comes back.
 */
describe('engine memory caps', () => {
  const dirs: string[] = [];
  const engines: TransactionEngine[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.stop();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  async function start(caps: { maxActiveTransactions?: number; maxRememberedOutcomes?: number }) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-capacity-'));
    dirs.push(dir);
    const log = new FileDecisionLog({ dir, autoCompact: false, maxRetainedCompleted: 0 });
    const a = new FakeParticipant('a');
    const engine = new TransactionEngine({ log, participants: new ParticipantRegistry([a]), config: parseEngineConfig({ sweepIntervalMs: 0, ...caps }) });
    engines.push(engine);
    await engine.start();
    return { engine, log };
  }

  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => 'begun',
      (e: unknown) => (isTwopcError(e) ? `${e.code} ${String(e.details.limit)}` : String(e)),
    );

  it('refuses a begin past maxActiveTransactions, and takes one again once a transaction ended', async () => {
    const { engine } = await start({ maxActiveTransactions: 3 });
    const txs = [await engine.begin(), await engine.begin(), await engine.begin()];
    expect(await refusal(engine.begin())).toBe('over-capacity maxActiveTransactions');
    // Those begun are untouched: they end as usual.
    await engine.enlist(txs[0].id, 'a');
    await expect(engine.commit(txs[0].id)).resolves.toMatchObject({ state: 'committed' });
    // A one-phase commit leaves memory once its `complete` is stored, just after it answered.
    for (let i = 0; i < 100 && engine.liveCount >= 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await refusal(engine.begin())).toBe('begun');
    expect(await refusal(engine.begin())).toBe('over-capacity maxActiveTransactions');
  });

  it('refuses a begin past maxRememberedOutcomes; outcomes within retention are never dropped to make room', async () => {
    const { engine, log } = await start({ maxRememberedOutcomes: 2 });
    for (let i = 0; i < 3; i++) {
      const tx = await engine.begin();
      await engine.abort(tx.id);
    }
    await log.compact();
    expect(log.held().outcomes).toBe(3);
    expect(await refusal(engine.begin())).toBe('over-capacity maxRememberedOutcomes');
    expect(log.held().outcomes).toBe(3);
  });

  it('a periodic recovery pass queues no task for the transactions running here (issue 16 item 2: no stall with tens of thousands live)', async () => {
    const { engine, log } = await start({});
    // Each with a branch: a transaction with none has no record yet (its begin goes out with its first one).
    for (let i = 0; i < 500; i++) await engine.enlist((await engine.begin()).id, 'a');
    const run = jest.spyOn(Semaphore.prototype, 'run');
    const unfinished = jest.spyOn(log, 'unfinished');
    try {
      const report = await engine.admin.recover({ onlyExpired: true, waitMs: 0 });
      expect(report.unfinished).toBe(500);
      expect(unfinished).toHaveBeenCalledTimes(1);
      expect(run).not.toHaveBeenCalled();
    } finally {
      run.mockRestore();
      unfinished.mockRestore();
    }
  });
});
