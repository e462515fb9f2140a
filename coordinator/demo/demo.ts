import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { BankCheck, BankState, checkBanks, readBank, waitForNoPrepared } from './bank-check';
import { startBankSystem } from './bank-system';
import { demoReport, progressLine, TransferCounts } from './demo-report';
import { LiveLine, ProgressStream } from './progress';
import { Reaper } from './reaper';
import { Teardown } from './teardown';
import { BankClient, TransferOutcome } from './transfer-client';
import { BANKS, planTransfers, PlannedTransfer } from './transfer-plan';

const count = (field: string, min: number, max: number) =>
  z.number({ error: `${field} must be a number` }).int(`${field} must be an integer`).min(min, `${field} must be >= ${min}`).max(max, `${field} must be <= ${max}`);

const optionsSchema = z
  .object({
    transfers: count('transfers', 1, 1_000_000).default(200),
    concurrency: count('concurrency', 1, 64).default(8),
    accounts: count('accounts', 1, 100_000).default(10),
    initialBalance: count('initialBalance', 10, 1_000_000_000).default(1_000),
    overdraftRate: z.number({ error: 'overdraftRate must be a number' }).min(0, 'overdraftRate must be >= 0').max(1, 'overdraftRate must be <= 1').default(0.05),
    /** Stop everything and throw DemoInterruptedError on SIGINT / SIGTERM (a caller that handles signals itself turns it off). */
    handleSignals: z.boolean().default(true),
    stdout: z.custom<ProgressStream>((s) => typeof (s as ProgressStream | undefined)?.write === 'function', 'stdout must be a writable stream').optional(),
    stderr: z.custom<ProgressStream>((s) => typeof (s as ProgressStream | undefined)?.write === 'function', 'stderr must be a writable stream').optional(),
  })
  .strict();

/**
 * Options of {@link runDemo}: how many transfers, how many at a time, the
 * bank's size, how many fail on purpose, and where output goes.
 */
export type DemoOptions = z.input<typeof optionsSchema>;

/** What {@link runDemo} found. `ok` is the check: money conserved, every transfer atomic, nothing left prepared, no unexpected failure. */
export interface DemoResult {
  ok: boolean;
  counts: TransferCounts;
  banks: BankState[];
  check: BankCheck;
}

/** The run was stopped by a signal (Ctrl-C); everything was torn down. */
export class DemoInterruptedError extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'DemoInterruptedError';
  }
}

/**
 * The bank-transfer demo, from nothing: starts two throwaway PostgreSQL
 * clusters (one database per bank), the coordinator (`twopc serve`) and two
 * account services built on the participant SDK, each its own process; runs
 * the transfers through them (a few overdrafts fail on purpose and abort);
 * prints the final balances and the check on stdout (progress on stderr);
 * and tears everything down, also on errors and Ctrl-C.
 *
 * @example
 * const result = await runDemo({ transfers: 200, concurrency: 8 });
 * process.exitCode = result.ok ? 0 : 1;
 */
export async function runDemo(input: DemoOptions = {}): Promise<DemoResult> {
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) throw new Error(`runDemo: ${parsed.error.issues[0].message}`);
  const o = parsed.data;
  const stdout = o.stdout ?? process.stdout;
  const progress = new LiveLine(o.stderr ?? process.stderr);

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-demo-'));
  const reaper = Reaper.start(path.join(root, 'reaper.list'));
  reaper.add('dir', root);
  const teardown = new Teardown((line) => progress.note(line));
  teardown.add('remove the temp dir', () => fs.rmSync(root, { recursive: true, force: true }));

  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) return;
    progress.note(`${signal}: stopping the services, the coordinator and the clusters…`);
    stop.abort(new DemoInterruptedError(signal));
  };
  // Kept until the end: Ctrl-C may arrive twice (from the terminal, and relayed by tsx or npm).
  if (o.handleSignals) for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, onSignal);
  const checkStop = () => {
    if (stop.signal.aborted) throw stop.signal.reason;
  };

  let logTails = () => '';
  try {
    const system = await startBankSystem({ root, accounts: o.accounts, initialBalance: o.initialBalance, poolSize: o.concurrency + 4, teardown, reaper, note: (l) => progress.note(l) });
    logTails = system.logTails;
    checkStop();
    const client = new BankClient({ coordinatorUrl: system.coordinator.url, apiToken: system.coordinator.apiToken, banks: system.serviceUrls, connections: o.concurrency });
    teardown.add('close the client', () => client.close());

    progress.note(`running ${o.transfers} transfers, ${o.concurrency} at a time (${Math.floor(o.transfers * o.overdraftRate)} overdrafts that must abort)…`);
    const plan = planTransfers({ transfers: o.transfers, accounts: o.accounts, initialBalance: o.initialBalance, overdraftRate: o.overdraftRate });
    const { counts, outcomes } = await runTransfers(client, plan, o.concurrency, stop.signal, (c) => progress.update(progressLine(c)));
    progress.done(progressLine(counts));
    checkStop();

    progress.note('checking both databases…');
    const databases = BANKS.map((bank) => system.databases[bank]);
    await waitForNoPrepared(databases, 15_000);
    const banks = await Promise.all(BANKS.map((bank) => readBank(bank, system.databases[bank])));
    const told = {
      committed: outcomes.flatMap((x) => (x.state === 'committed' ? [x.txId] : [])),
      aborted: outcomes.flatMap((x) => (x.state === 'aborted' ? [x.txId] : [])),
      failures: counts.failed,
    };
    const check = checkBanks(banks, BANKS.length * o.accounts * o.initialBalance, told);
    stdout.write(demoReport(counts, banks, check));
    if (!check.ok) progress.note(`what the processes said last:\n${logTails()}`);
    return { ok: check.ok, counts, banks, check };
  } catch (e) {
    // The caller reports the error itself; what the processes printed last is only known here.
    const tails = e instanceof DemoInterruptedError ? '' : logTails();
    if (tails) progress.note(`what the processes said last:\n${tails}`);
    throw e;
  } finally {
    if (!stop.signal.aborted) progress.note('stopping the services, the coordinator and the clusters…');
    await teardown.run();
    reaper.disarm();
    if (o.handleSignals) for (const s of ['SIGINT', 'SIGTERM'] as const) process.removeListener(s, onSignal);
  }
}

/** `concurrency` workers, each making the next planned transfer until none are left (or the run is stopped). */
async function runTransfers(
  client: BankClient,
  plan: PlannedTransfer[],
  concurrency: number,
  signal: AbortSignal,
  onProgress: (counts: TransferCounts) => void,
): Promise<{ counts: TransferCounts; outcomes: TransferOutcome[] }> {
  const started = Date.now();
  const counts: TransferCounts = { planned: plan.length, done: 0, committed: 0, aborted: 0, overdraftsAborted: 0, failed: 0, elapsedMs: 0, concurrency };
  const outcomes: TransferOutcome[] = [];
  let next = 0;
  const worker = async () => {
    while (!signal.aborted && next < plan.length) {
      const t = plan[next++];
      const outcome = await client.transfer(t);
      outcomes.push(outcome);
      counts.done += 1;
      if (outcome.state === 'committed') counts.committed += 1;
      else if (outcome.state === 'aborted') {
        counts.aborted += 1;
        if (outcome.overdraft) counts.overdraftsAborted += 1;
      } else {
        counts.failed += 1;
        counts.firstFailure ??= outcome.error;
      }
      counts.elapsedMs = Date.now() - started;
      onProgress(counts);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  counts.elapsedMs = Date.now() - started;
  return { counts, outcomes };
}
