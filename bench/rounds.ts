import type { BenchOptions } from './bench-options';
import type { ModeSession } from './mode-session';
import { CpuProfiler } from './profile/cpu-profiler';
import { RunResult, runWorkers } from './run-workers';
import { BankTransfer, transferPlan } from './transfer-plan';

export type Progress = (line: string) => void;

/**
 * Every round runs every mode once (warm-up, then measured), starting one mode
 * later each round: on this noisy machine a slow spell then hits every mode,
 * and no mode always runs first.
 */
export async function runRounds(sessions: ModeSession[], options: BenchOptions, signal: AbortSignal, progress: Progress, postgresDataDirs: readonly string[] = []): Promise<void> {
  const profiler = options.cpuProfile ? new CpuProfiler(options.cpuProfile) : undefined;
  try {
    for (let round = 0; round < options.rounds; round += 1) {
      for (let i = 0; i < sessions.length; i += 1) {
        const session = sessions[(i + round) % sessions.length];
        const result = await runOnce(session, round, options, signal, postgresDataDirs, profiler);
        if (signal.aborted) return;
        session.results.push(result);
        progress(describe(session, round, options, result));
      }
    }
  } finally {
    profiler?.close();
  }
}

async function runOnce(session: ModeSession, round: number, options: BenchOptions, signal: AbortSignal, postgresDataDirs: readonly string[], profiler?: CpuProfiler): Promise<RunResult & { profileFile?: string }> {
  // Same seed for every mode in a round: each sees the same transfers in the same order.
  const next = transferPlan(options.seed + round, options.accounts);
  const spec = { transfer: (t: BankTransfer) => session.runner.transfer(t), next, concurrency: options.concurrency, signal, postgresDataDirs };
  if (options.warmup > 0) await runWorkers({ ...spec, durationMs: options.warmup * 1000 });
  if (session.tally) session.tally.recording = true;
  await profiler?.start();
  try {
    const result = await runWorkers({ ...spec, durationMs: options.seconds * 1000 });
    const profileFile = await profiler?.stop(`${session.mode.name}-round${round + 1}`);
    return { ...result, ...(profileFile ? { profileFile } : {}) };
  } finally {
    if (session.tally) session.tally.recording = false;
  }
}

function describe(session: ModeSession, round: number, options: BenchOptions, r: RunResult & { profileFile?: string }): string {
  const tps = (r.transfers * 1000) / r.elapsedMs;
  return (
    `round ${round + 1}/${options.rounds} ${session.mode.name.padEnd(8)} ${String(r.transfers).padStart(7)} transfers  ${tps.toFixed(1).padStart(8)} tps  ` +
    `p50 ${r.latencies.percentile(50).toFixed(2)} ms  p99 ${r.latencies.percentile(99).toFixed(2)} ms` +
    (r.errors ? `  ${r.errors} errors (${r.firstError})` : '') +
    (r.profileFile ? `  (${r.profileFile})` : '')
  );
}
