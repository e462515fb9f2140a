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
