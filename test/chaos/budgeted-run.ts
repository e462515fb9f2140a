import fs from 'node:fs';
import { parseChaosOptions } from '../../chaos/chaos-options';
import { runChaos } from '../../chaos/chaos-run';
import { renderSummary, type ChaosReport } from '../../chaos/summary';

/**
 * A chaos run for CI. Alone the seeded run of chaos-ci takes about 80 s here;
 * beside the other suites of a full CI run on two cores it once took over
 * 240 s. Past `budgetMs` the run is interrupted (no new transactions or
 * faults, the report still made: `report.interrupted`), so a slow machine
 * fails with the summary and the timed progress lines instead of a bare jest
 * timeout; a run that does not end after that prints its progress too.
 */
export async function budgetedChaosRun(options: Parameters<typeof parseChaosOptions>[0], budgetMs: number): Promise<{ report: ChaosReport; summary: string; progress: string[] }> {
  const progress: string[] = [];
  const started = Date.now();
  const budget = new AbortController();
  const timer = setTimeout(() => budget.abort(), budgetMs);
  const watchdog = setTimeout(() => console.log(`chaos run not ended ${budgetMs / 1000 + 60} s after its start; progress so far:\n${progress.join('\n')}`), budgetMs + 60_000);
  try {
    const report = await runChaos(parseChaosOptions(options), { log: (m) => progress.push(`+${((Date.now() - started) / 1000).toFixed(1)} s ${m}`), signal: budget.signal });
    return { report, summary: renderSummary(report), progress };
  } finally {
    clearTimeout(timer);
    clearTimeout(watchdog);
  }
}

/**
 * The negative control's verdict: a coordinator that commits a branch before
 * the decision must be caught. A branch committed before a "no" vote leaves the
 * transfer half applied, visible although reported aborted, and the
 * coordinator with a heuristic hazard on the branch it cannot roll back. A run
 * with violations keeps its directory for inspection; this one was expected,
 * so it is removed.
 */
export function expectBrokenCoordinatorCaught(report: ChaosReport): void {
  expect({ interrupted: report.interrupted }).toEqual({ interrupted: false });
  expect(report.ok).toBe(false);
  const kinds = new Set(report.violations.map((v) => v.kind));
  for (const kind of ['partial-commit', 'visible-abort', 'coordinator-unfinished'] as const) expect([kind, kinds.has(kind)]).toEqual([kind, true]);
  expect(report.runDir).toBeDefined();
  fs.rmSync(report.runDir!, { recursive: true, force: true });
}
