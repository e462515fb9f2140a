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
  const afterThis: Array<() => void> = [];
  afterEach(async () => {
    for (const undo of afterThis.splice(0)) undo();
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

  it('at the outcome cap, a refused begin makes the log forget the outcomes past their retention (any of them, at most once per compaction interval), so room comes back while idle', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-capacity-'));
    dirs.push(dir);
    // The engine stamps outcomes with Date.now, the log judges retention by it: one clock for both, moved by hand.
    const clock = { now: Date.now() };
    const dateNow = jest.spyOn(Date, 'now').mockImplementation(() => clock.now);
    afterThis.push(() => dateNow.mockRestore());
    const log = new FileDecisionLog({ dir, maxRetainedCompleted: 0, completedRetentionMs: 100_000, compactIntervalMs: 30_000 });
    const engine = new TransactionEngine({ log, participants: new ParticipantRegistry([new FakeParticipant('a')]), config: parseEngineConfig({ sweepIntervalMs: 0, maxRememberedOutcomes: 4 }) });
    engines.push(engine);
    await engine.start();
    const abortOne = async () => engine.abort((await engine.begin()).id);
    // Retention 100 s: the first outcome expires at +100 s, the next three (at +60 s) at +160 s.
    await abortOne();
    clock.now += 60_000;
    for (let i = 0; i < 3; i++) await abortOne();
    await log.compact();
    expect(log.held().outcomes).toBe(4);
    // A refused begin, then whatever compaction it started has finished (the log's own timer never fires here).
    const compactions = (log as unknown as { compactor: { idle(): Promise<unknown> } }).compactor;
    const refusedThenSettled = async () => {
      const why = await refusal(engine.begin());
      await compactions.idle();
      return why;
    };
    // Another compaction (the timer's, an operator's) at +95 s, before the first outcome expires.
    clock.now += 35_000;
    await log.compact();
    // +105 s: the first outcome has expired, but a compaction started 10 s ago: under steady load at the
    // cap the timer compacts every interval anyway, and a refused begin must not add a second rewrite.
    clock.now += 10_000;
    expect(await refusedThenSettled()).toBe('over-capacity maxRememberedOutcomes');
    expect(log.held().outcomes).toBe(4);
    // +125 s, an interval after that compaction: the expired one goes (one of four, below the idle rule's half).
    clock.now += 20_000;
    expect(await refusedThenSettled()).toBe('over-capacity maxRememberedOutcomes');
    expect(log.held().outcomes).toBe(3);
    // Room again: the begin is taken (its outcome expires at +225 s).
    expect(await refusal(engine.begin().then((tx) => engine.abort(tx.id)))).toBe('begun');
    await log.compact();
    expect(log.held().outcomes).toBe(4);
    // +155 s: none has expired yet (the three expire at +160 s): the check finds nothing, and counts.
    clock.now += 30_000;
    expect(await refusedThenSettled()).toBe('over-capacity maxRememberedOutcomes');
    expect(log.held().outcomes).toBe(4);
    // +170 s: three expired, but within one compaction interval of the last check: a flood of refused
    // begins walks the outcomes (and rewrites the snapshot) at most once per interval.
    clock.now += 15_000;
    expect(await refusedThenSettled()).toBe('over-capacity maxRememberedOutcomes');
    expect(log.held().outcomes).toBe(4);
    // +185 s, a whole interval after that check: the three past their retention go, the newest stays.
    clock.now += 15_000;
    expect(await refusedThenSettled()).toBe('over-capacity maxRememberedOutcomes');
    expect(log.held().outcomes).toBe(1);
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
