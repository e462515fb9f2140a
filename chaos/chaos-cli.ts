import { parseChaosOptions, type ChaosOptionsInput } from './chaos-options';
import { runChaos } from './chaos-run';
import { parseFaultKinds } from './fault-schedule';
import { renderSummary } from './summary';

/** The flags of `npm run chaos` (see chaos/chaos-command.ts). */
export interface ChaosCliFlags {
  transactions?: number;
  duration?: number;
  seed?: number;
  ledgers?: number;
  clusters?: number;
  workers?: number;
  accounts?: number;
  faultGap?: number;
  rounds?: number;
  faults?: string;
  settleTimeout?: number;
  directDatabases?: boolean;
  keep?: boolean;
  runDir?: string;
  json?: boolean;
  breakProtocol?: ChaosOptionsInput['breakProtocol'];
  instances?: number;
  log?: ChaosOptionsInput['log'];
  leaseMs?: number;
  carried?: boolean;
  crashPoints?: string;
}

/** Exit codes: 0 clean, 1 violations or a failed run, 2 bad usage, 130 interrupted. */
export const CHAOS_EXIT = { ok: 0, violations: 1, usage: 2, interrupted: 130 } as const;

/**
 * Runs a chaos run from command-line flags: progress on stderr, the summary
 * (or the JSON report) on stdout. Ctrl-C stops the run and cleans up; a
 * second Ctrl-C exits at once (exit hooks still kill every child and cluster).
 */
export async function runChaosCli(flags: ChaosCliFlags): Promise<number> {
  const input: ChaosOptionsInput = {
    ...(flags.transactions !== undefined ? { transactions: flags.transactions } : {}),
    ...(flags.duration !== undefined ? { durationMs: flags.duration * 1000 } : {}),
    ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
    ...(flags.ledgers !== undefined ? { ledgers: flags.ledgers } : {}),
    ...(flags.clusters !== undefined ? { clusters: flags.clusters } : {}),
    ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
    ...(flags.accounts !== undefined ? { accountsPerLedger: flags.accounts } : {}),
    ...(flags.faultGap !== undefined ? { faultGapMs: flags.faultGap } : {}),
    ...(flags.rounds !== undefined ? { minRounds: flags.rounds } : {}),
    ...(flags.settleTimeout !== undefined ? { settleTimeoutMs: flags.settleTimeout * 1000 } : {}),
    ...(flags.directDatabases === false ? { directDatabases: false } : {}),
    ...(flags.keep ? { keep: true } : {}),
    ...(flags.runDir ? { runDir: flags.runDir } : {}),
    ...(flags.breakProtocol ? { breakProtocol: flags.breakProtocol } : {}),
    ...(flags.instances !== undefined ? { instances: flags.instances } : {}),
    ...(flags.log !== undefined ? { log: flags.log } : {}),
    ...(flags.leaseMs !== undefined ? { leaseMs: flags.leaseMs } : {}),
    ...(flags.carried ? { carried: true } : {}),
    ...(flags.crashPoints !== undefined ? { crashPoints: flags.crashPoints.split(',').map((s) => s.trim()).filter(Boolean) as NonNullable<ChaosOptionsInput['crashPoints']> } : {}),
  };
  let options;
  try {
    const faults = flags.faults === undefined ? undefined : parseFaultKinds(flags.faults);
    if (faults !== undefined) input.faults = faults;
    options = parseChaosOptions(input);
  } catch (e) {
    process.stderr.write(`chaos: ${e instanceof Error ? e.message : String(e)}\n`);
    return CHAOS_EXIT.usage;
  }
  const log = (message: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(CHAOS_EXIT.interrupted);
    log('interrupted: stopping the run and cleaning up (Ctrl-C again to exit at once)');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await runChaos(options, { log, signal: abort.signal });
    process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderSummary(report)}\n`);
    if (report.interrupted) return CHAOS_EXIT.interrupted;
    return report.ok ? CHAOS_EXIT.ok : CHAOS_EXIT.violations;
  } catch (e) {
    process.stderr.write(`chaos: the run failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    return CHAOS_EXIT.violations;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
