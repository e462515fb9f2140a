import { FAULT_KINDS } from '../../chaos/fault-schedule';
import { budgetedChaosRun as run, expectBrokenCoordinatorCaught } from './budgeted-run';

/**
 * The chaos run of docs/CHAOS.md, short enough for CI: three ledgers (each
 * its own participant service process and PostgreSQL cluster) and the
 * coordinator service, a few hundred bank transfers, and two full rounds of
 * faults (every kind at least twice: coordinator SIGKILLs at random moments
 * and at crash points, disk full and I/O errors of its log, service kills,
 * database crashes, dropped, delayed, reset and cut connections, SIGSTOP
 * pauses). The checker must find nothing. Then the negative control: the
 * same harness against a coordinator that commits a branch before the
 * decision must be caught.
 */

const SEED = 20_251_121;

describe('chaos', () => {
  it('a seeded run with every fault kind loses nothing', async () => {
    const { report, summary, progress } = await run({ seed: SEED, transactions: 300, minRounds: 2, faultGapMs: 700, settleTimeoutMs: 90_000 }, 330_000);
    // The summary is the first thing to read when this fails; the progress lines say what happened when.
    if (!report.ok) console.log(`${summary}\n\nprogress:\n${progress.join('\n')}`);
    else console.log(summary);
    expect({ interrupted: report.interrupted }).toEqual({ interrupted: false });
    expect(report.violations).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.recovery.quiescent).toBe(true);
    expect(report.transactions.begun).toBeGreaterThanOrEqual(300);
    expect(report.transactions.outcomes.ok).toBeGreaterThan(0);
    expect(report.transactions.outcomes.failed).toBeGreaterThan(0);
    const c = report.faults.counters;
    for (const kind of FAULT_KINDS) expect([kind, c.applied[kind] >= 2]).toEqual([kind, true]);
    expect(c.coordinatorKills + c.crashPointKills).toBeGreaterThanOrEqual(10);
    expect(c.crashPointKills).toBeGreaterThanOrEqual(1);
    expect(c.diskFaultsHit).toBeGreaterThanOrEqual(1);
    expect(c.databaseCrashes).toBeGreaterThanOrEqual(2);
  }, 480_000);

  it('negative control: a coordinator that commits a branch before the decision is caught', async () => {
    const { report, summary } = await run({ seed: SEED, transactions: 120, faults: [], breakProtocol: 'commit-one-before-decision', settleTimeoutMs: 20_000 }, 120_000);
    console.log(summary);
    expectBrokenCoordinatorCaught(report);
  }, 180_000);
});
