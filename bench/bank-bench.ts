import { errorMessage } from '../coordinator/engine/ports/protocol';
import { BankClusters } from './bank-clusters';
import { parseBenchOptions } from './bench-options';
import { Cleanup } from './cleanup';
import { ModeSession } from './mode-session';
import { MODES, WHAT_IF_MODES } from './modes';
import { cpuJson, cpuTable } from './cpu-report';
import { profileReport, resultJson, resultTable } from './report';
import { runRounds } from './rounds';

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
    // Added last so it runs first: workers stop before their modes are closed.
    cleanup.add('stop workers', () => stop.abort());
    await runRounds(sessions, options, stop.signal, progress, clusters.dataDirs());
    // Closing drains work in flight (the engine finishes phase 2) before the invariants are checked.
    for (const session of sessions) await session.close();
    problems = await clusters.check();
  } finally {
    await cleanup.run();
  }

  const totals = sessions.map((s) => s.totals());
  for (const t of totals) if (t.errors > 0) problems.push(`${t.name}: ${t.errors} transfer(s) failed, first: ${t.firstError}`);
  for (const p of problems) progress(`PROBLEM: ${p}`);
  process.stdout.write(`\n${resultTable(totals)}\n\n${cpuTable(totals)}\n\n`);
  if (options.profile) process.stdout.write(profileReport(sessions));
  process.stdout.write(`${JSON.stringify({ ...resultJson(totals), ...cpuJson(totals) })}\n`);
  return problems.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error && e.stack ? e.stack : errorMessage(e)}\n`);
    process.exit(1);
  },
);
