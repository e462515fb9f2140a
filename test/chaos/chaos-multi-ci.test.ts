import { parseChaosOptions } from '../../chaos/chaos-options';
import { runChaos } from '../../chaos/chaos-run';
import { faultKindsFor } from '../../chaos/fault-schedule';
import { renderSummary } from '../../chaos/summary';

/**
 * The multi-instance chaos run of docs/CHAOS.md, short enough for CI: two
 * `twopc serve` instances share a PostgreSQL decision log (a cluster of its
 * own), clients begin on one instance and commit on either, the ledger
 * services reach the coordinator through a proxy the runner moves off an
 * instance it takes down. One full round of faults: every kind of the
 * shared log at least once — instances SIGKILLed (some left dead past their
 * lease, so the other must take them over), killed at crash points, paused
 * (one past its lease, so it is fenced), the log's cluster crashed, and the
 * service, database and link faults of the single-instance run. The checker
 * must find nothing: no violation, nothing unfinished in the shared log,
 * every dead process's lease taken over.
 *
 * The seed is one whose first round leaves instances dead past their lease
 * twice and pauses one past it (see FaultSchedule: the schedule depends on
 * the seed only).
 */

const SEED = 20_251_124;

describe('chaos, two instances on a shared PostgreSQL log', () => {
  it('a seeded run with every multi-instance fault kind loses nothing', async () => {
    const progress: string[] = [];
    const options = parseChaosOptions({ seed: SEED, instances: 2, log: 'postgres', transactions: 150, minRounds: 1, faultGapMs: 800, settleTimeoutMs: 60_000 });
    const report = await runChaos(options, { log: (m) => progress.push(m) });
    const summary = renderSummary(report);
    // The summary is the first thing to read when this fails; the progress lines say what happened when.
    console.log(report.ok ? summary : `${summary}\n\nprogress:\n${progress.join('\n')}`);

    expect(report.violations).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.recovery.quiescent).toBe(true);
    expect(report.transactions.outcomes.ok).toBeGreaterThan(0);
    expect(report.transactions.outcomes.failed).toBeGreaterThan(0);
    const c = report.faults.counters;
    for (const kind of faultKindsFor('postgres')) expect([kind, c.applied[kind] >= 1]).toEqual([kind, true]);
    expect(c.applied['disk-full'] + c.applied['disk-io-error']).toBe(0);
    expect(c.storeCrashes).toBeGreaterThanOrEqual(1);
    expect(c.perInstance.map((i) => i.name)).toEqual(['coord-1', 'coord-2']);
    expect(c.perInstance.reduce((n, i) => n + i.downPastLease, 0)).toBeGreaterThanOrEqual(1);
    // Dead instances were taken over by the other one (their lease expired), and the paused one was fenced.
    const logs = report.instanceLogs!;
    expect(logs.reduce((n, l) => n + l.tookOverExpired, 0)).toBeGreaterThanOrEqual(1);
    expect(logs.reduce((n, l) => n + l.fenced, 0)).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
