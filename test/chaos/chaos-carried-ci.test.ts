import type { FaultKind } from '../../chaos/fault-schedule';
import { budgetedChaosRun as run, expectBrokenCoordinatorCaught } from './budgeted-run';

/**
 * The chaos run with carried registration (docs/CHAOS.md, `--carried`),
 * short enough for CI: the clients mint the ids, the services open their
 * branches on the first call and answer signed registrations, the commit
 * carries them. The faults are those carried registration adds windows to:
 * the coordinator SIGKILLed at the point where a carried commit's
 * registrations are durable and no PREPARE has left
 * (`after-carried-registration`), participant services killed while they
 * hold branches nobody has registered yet, and connections cut mid-message
 * (a capabilities answer, a PREPARE or a vote half sent), and transfers the
 * clients give up aborted with their registrations (carried abort). The checker must find nothing; then the negative control: the same
 * carried workload against a coordinator that commits a branch before the
 * decision must be caught.
 */

const SEED = 20_261_202;
const FAULTS: FaultKind[] = ['coordinator-crash-point', 'service-kill', 'link-cut'];

describe('chaos, carried registration', () => {
  it('a seeded carried run through coordinator kills between registration and PREPARE, service kills and cut connections loses nothing', async () => {
    const { report, summary, progress } = await run({
      seed: SEED,
      carried: true,
      transactions: 150,
      minRounds: 1,
      faults: FAULTS,
      crashPoints: ['after-carried-registration'],
      faultGapMs: 1_500,
      settleTimeoutMs: 40_000,
    }, 200_000);
    if (!report.ok) console.log(`${summary}\n\nprogress:\n${progress.join('\n')}`);
    else console.log(summary);
    expect({ interrupted: report.interrupted }).toEqual({ interrupted: false });
    expect(report.violations).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.recovery.quiescent).toBe(true);
    expect(report.transactions.outcomes.ok).toBeGreaterThan(0);
    expect(report.transactions.outcomes.failed).toBeGreaterThan(0);
    // Transfers given up with registrations in hand are aborted with them (carried abort), not left to their timeout.
    expect(report.transactions.carriedAborts).toBeGreaterThan(0);
    const c = report.faults.counters;
    for (const kind of FAULTS) expect([kind, c.applied[kind] >= 1]).toEqual([kind, true]);
    // The window this test exists for: registrations durable, no PREPARE sent, then SIGKILL.
    expect(c.crashPointKillsAt['after-carried-registration'] ?? 0).toBeGreaterThanOrEqual(1);
    expect(c.serviceKills).toBeGreaterThanOrEqual(2);
    expect(c.applied['link-cut']).toBeGreaterThanOrEqual(2);
  }, 300_000);

  it('negative control: a coordinator that commits a branch before the decision is caught in carried mode too', async () => {
    const { report, summary } = await run({ seed: SEED, carried: true, transactions: 60, faults: [], breakProtocol: 'commit-one-before-decision', settleTimeoutMs: 10_000 }, 90_000);
    console.log(summary);
    expectBrokenCoordinatorCaught(report);
  }, 150_000);
});
