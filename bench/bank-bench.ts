import { errorMessage } from '../coordinator/errors';
import { BankClusters } from './bank-clusters';
import { BenchOptions, parseBenchOptions } from './bench-options';
import { Cleanup } from './cleanup';
import { ModeSession } from './mode-session';
import { MODES, WHAT_IF_MODES } from './modes';
import { profileReport, resultJson, resultTable } from './report';
import { runWorkers } from './run-workers';
import { BankTransfer, transferPlan } from './transfer-plan';

/**
 * `npm run bench`: bank transfers between two durable PostgreSQL clusters, in
 * every mode, interleaved in rounds (this machine is noisy: a slow minute then
 * hits every mode, not one). Progress goes to stderr; the table, then one JSON
 * line (last), to stdout. See BENCHMARKS.md.
 */
async function main(): Promise<number> {
  const known = [...MODES, ...WHAT_IF_MODES];
  const options = parseBenchOptions(process.argv, MODES.map((m) => m.name), known.map((m) => m.name));
  const modes = options.modes.map((name) => known.find((m) => m.name === name)!);
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  const cleanup = new Cleanup();
  cleanup.onSignals();
  const stop = new AbortController();
  cleanup.add('stop workers', () => stop.abort());

  const sessions: ModeSession[] = [];
  let problems: string[] = [];
  try {
    progress(`starting two durable PostgreSQL clusters, ${options.accounts} accounts each…`);
    const clusters = await BankClusters.start(
      {
        accounts: options.accounts,
        // Every mode keeps its own pools open for the whole run, plus the engine's own connections and slack.
        maxConnections: modes.length * options.poolSize + 30,
        maxPreparedTransactions: Math.max(100, options.concurrency * 2),
      },
      cleanup,
    );
    for (const mode of modes) {
      const session = await ModeSession.open(mode, clusters, options);
      cleanup.add(`close mode ${mode.name}`, () => session.close());
      sessions.push(session);
    }
    await runRounds(sessions, options, stop.signal, progress);
    // Closing drains work in flight (the engine finishes phase 2) before the invariants are checked.
    for (const session of sessions) await session.close();
    problems = await clusters.check();
  } finally {
    await cleanup.run();
  }

  const totals = sessions.map((s) => s.totals());
  for (const t of totals) if (t.errors > 0) problems.push(`${t.name}: ${t.errors} transfer(s) failed, first: ${t.firstError}`);
  for (const p of problems) progress(`PROBLEM: ${p}`);
  process.stdout.write(`\n${resultTable(totals)}\n\n`);
  if (options.profile) process.stdout.write(profileReport(sessions));
  process.stdout.write(`${JSON.stringify(resultJson(totals))}\n`);
  return problems.length > 0 ? 1 : 0;
}

/** Each round runs every mode once, starting one mode later each round, so no mode always runs first. */
async function runRounds(sessions: ModeSession[], options: BenchOptions, signal: AbortSignal, progress: (line: string) => void): Promise<void> {
  for (let round = 0; round < options.rounds; round += 1) {
    for (let i = 0; i < sessions.length; i += 1) {
      const session = sessions[(i + round) % sessions.length];
      // Same seed for every mode in a round: each sees the same transfers in the same order.
      const next = transferPlan(options.seed + round, options.accounts);
      const spec = { transfer: (t: BankTransfer) => session.runner.transfer(t), next, concurrency: options.concurrency, signal };
      if (options.warmup > 0) await runWorkers({ ...spec, durationMs: options.warmup * 1000 });
      if (session.tally) session.tally.recording = true;
      const result = await runWorkers({ ...spec, durationMs: options.seconds * 1000 });
      if (session.tally) session.tally.recording = false;
      session.results.push(result);
      const tps = (result.transfers * 1000) / result.elapsedMs;
      progress(
        `round ${round + 1}/${options.rounds} ${session.mode.name.padEnd(8)} ${String(result.transfers).padStart(7)} transfers  ${tps.toFixed(1).padStart(8)} tps  ` +
          `p50 ${result.latencies.percentile(50).toFixed(2)} ms  p99 ${result.latencies.percentile(99).toFixed(2)} ms${result.errors ? `  ${result.errors} errors (${result.firstError})` : ''}`,
      );
    }
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error && e.stack ? e.stack : errorMessage(e)}\n`);
    process.exit(1);
  },
);
