import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { Pool } from 'pg';
import { parseEngineConfig } from '../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../coordinator/engine/participant-registry';
import { TransactionEngine } from '../coordinator/engine/transaction-engine';
import { TwopcError } from '../coordinator/engine/ports/protocol';
import { Coordinator } from '../coordinator/in-process/coordinator';
import type { BranchOpener, BranchQueryable } from '../coordinator/in-process/transaction-scope';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import type { BranchRef } from '../coordinator/engine/ports/participant';
import { PostgresParticipant } from '../participant-sdk/src/postgres/postgres-participant';
import { PgCluster } from '../harness/pg-cluster';
import { Cleanup } from './cleanup';
import { startReaper } from './reaper';

/**
 * `npx tsx bench/recovery-bench.ts`: how long a restarted coordinator takes
 * to finish a backlog of committed-but-not-completed transactions.
 *
 * 1. Two durable PostgreSQL clusters (fsync, synchronous_commit on), one
 *    ledger database each, max_prepared_transactions above the backlog.
 * 2. The engine commits N two-branch transactions for real (PREPARE on both,
 *    forced commit decision with group commit), but every COMMIT PREPARED is
 *    held back (as if both participants dropped off right after the decision)
 *    and the coordinator stops: N prepared branches per cluster, N commit
 *    decisions in the log, none completed.
 * 3. A new coordinator starts on that log with fresh pools, as `twopc serve`
 *    would (pool of 10 per database, default recoveryConcurrency): the time
 *    from start until every branch acknowledged COMMIT PREPARED and every
 *    transaction is complete is the recovery time.
 *
 * Progress on stderr; a table, then one JSON line (last) on stdout.
 */

interface Options {
  transactions: number;
  poolSize: number;
  recoveryConcurrency: number;
  generateConcurrency: number;
}

const LEDGERS = ['ledger_a', 'ledger_b'] as const;

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be an integer >= 1');
  return n;
}

function parseOptions(argv: string[]): Options {
  const cmd = new Command('recovery-bench')
    .option('--transactions <n>', 'committed-but-not-completed transactions to leave behind', positive, 10_000)
    .option('--pool-size <n>', 'connections per database of the restarted coordinator (twopc serve uses 10)', positive, 10)
    .option('--recovery-concurrency <n>', "the engine's recoveryConcurrency (default 64)", positive, 64)
    .option('--generate-concurrency <n>', 'concurrent transactions while building the backlog', positive, 64)
    .parse(argv);
  return cmd.opts<Options>();
}

/** A direct participant whose COMMIT PREPARED never goes out: phase 2 stays pending (retried with a long backoff). */
class HeldBackCommits implements BranchOpener {
  constructor(private readonly inner: PostgresParticipant) {}
  get name(): string {
    return this.inner.name;
  }
  openBranch(branch: BranchRef): Promise<BranchQueryable> {
    return this.inner.openBranch(branch);
  }
  prepare(branch: BranchRef) {
    return this.inner.prepare(branch);
  }
  async commit(): Promise<void> {
    throw new TwopcError('participant-unavailable', 'recovery bench: phase 2 held back');
  }
  rollback(branch: BranchRef): Promise<void> {
    return this.inner.rollback(branch);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

async function startClusters(options: Options, cleanup: Cleanup): Promise<Map<string, PgCluster>> {
  const clusters = new Map<string, PgCluster>();
  await Promise.all(
    LEDGERS.map(async (ledger) => {
      const cluster = await PgCluster.start({
        name: `recovery-${ledger}`,
        durable: true,
        maxConnections: options.generateConcurrency + options.poolSize + 40,
        maxPreparedTransactions: options.transactions + 100,
      });
      cleanup.add(`destroy cluster ${ledger}`, () => cluster.destroy());
      clusters.set(ledger, cluster);
      await cluster.createDatabase(ledger);
      await cluster.withClient((c) => c.query('create table rows (tx text primary key)'), ledger);
    }),
  );
  const all = [...clusters.values()];
  startReaper({ dataDirs: all.map((c) => c.dataDir), dirs: all.map((c) => c.dir) }, process.env.TWOPC_KEEP_CLUSTERS === '1');
  return clusters;
}

function pools(clusters: Map<string, PgCluster>, max: number, cleanup: Cleanup): Map<string, Pool> {
  const out = new Map<string, Pool>();
  for (const [ledger, cluster] of clusters) {
    const pool = new Pool({ ...cluster.connectionConfig(ledger), max });
    pool.on('error', () => undefined);
    cleanup.add(`end pool ${ledger}`, () => pool.end());
    out.set(ledger, pool);
  }
  return out;
}

/** Commits `n` transactions whose phase 2 is held back, then stops the coordinator: the backlog. */
async function leaveBacklog(dir: string, clusters: Map<string, PgCluster>, options: Options, cleanup: Cleanup): Promise<number> {
  const started = Date.now();
  const participants = [...pools(clusters, options.generateConcurrency, cleanup)].map(([name, pool]) => new PostgresParticipant({ name, pool }));
  await Promise.all(participants.map((p) => p.start()));
  const coordinator = await Coordinator.start({
    log: new FileDecisionLog({ dir }),
    databases: participants.map((p) => new HeldBackCommits(p)),
    // commitWaitMs 0: commit answers once the decision is durable; the long backoff keeps phase 2 from retrying.
    engine: { commitWaitMs: 0, phaseTwoBaseDelayMs: 600_000, phaseTwoMaxDelayMs: 600_000, sweepIntervalMs: 0 },
  });
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < options.transactions) {
      next += 1;
      await coordinator.transaction(
        async (tx) => {
          await Promise.all(LEDGERS.map((ledger) => tx.db(ledger).query('insert into rows (tx) values ($1)', [tx.id])));
        },
        { databases: LEDGERS },
      );
      done += 1;
      if (done % 1000 === 0) progress(`backlog: ${done}/${options.transactions} committed, phase 2 held back`);
    }
  };
  await Promise.all(Array.from({ length: options.generateConcurrency }, worker));
  // stop() ends the held-back phase-2 retries (the next start resumes them) and closes the log.
  await coordinator.close();
  await Promise.all(participants.map((p) => p.close()));
  return (Date.now() - started) / 1000;
}

async function preparedCount(cluster: PgCluster): Promise<number> {
  return cluster.withClient(async (c) => Number((await c.query<{ n: string }>("select count(*)::text as n from pg_prepared_xacts where gid like 'twopc\\_%'")).rows[0].n));
}

async function rowCount(cluster: PgCluster, ledger: string): Promise<number> {
  return cluster.withClient(async (c) => Number((await c.query<{ n: string }>('select count(*)::text as n from rows')).rows[0].n), ledger);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv);
  const cleanup = new Cleanup();
  cleanup.onSignals();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-recovery-bench-'));
  cleanup.add(`remove ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  const problems: string[] = [];
  try {
    progress(`starting two durable PostgreSQL clusters (max_prepared_transactions ${options.transactions + 100})…`);
    const clusters = await startClusters(options, cleanup);

    progress(`leaving ${options.transactions} committed-but-not-completed transactions behind…`);
    const generateSeconds = await leaveBacklog(dir, clusters, options, cleanup);
    const prepared = await Promise.all([...clusters.values()].map(preparedCount));
    if (prepared.some((n) => n !== options.transactions)) problems.push(`backlog: ${prepared.join(' and ')} prepared, expected ${options.transactions} each`);

    // Reading the log back alone, for the breakdown (a start does it again below).
    const openStarted = Date.now();
    const probe = new FileDecisionLog({ dir });
    const opened = await probe.open();
    await probe.close();
    const logOpenMs = Date.now() - openStarted;

    progress(`restarting the coordinator: ${options.poolSize} connections per database, recoveryConcurrency ${options.recoveryConcurrency}…`);
    const restartPools = pools(clusters, options.poolSize, cleanup);
    const participants = [...restartPools].map(([name, pool]) => new PostgresParticipant({ name, pool }));
    await Promise.all(participants.map((p) => p.start()));
    let finished = 0;
    const engine = new TransactionEngine({
      log: new FileDecisionLog({ dir }),
      participants: new ParticipantRegistry(participants),
      // commitWaitMs: start() returns only once recovery's phase 2 has finished every transaction.
      config: parseEngineConfig({ recoveryConcurrency: options.recoveryConcurrency, commitWaitMs: 600_000, sweepIntervalMs: 0 }),
      observer: {
        phaseLatency: (phase) => {
          if (phase !== 'phase-two') return;
          finished += 1;
          if (finished % 1000 === 0) progress(`recovery: ${finished}/${options.transactions} complete`);
        },
      },
    });
    const started = process.hrtime.bigint();
    const report = await engine.start();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await engine.stop();
    await Promise.all(participants.map((p) => p.close()));

    const recovery = report.recovery;
    if (recovery.completed !== options.transactions || recovery.resumedCommit !== options.transactions) {
      problems.push(`recovery: resumed ${recovery.resumedCommit} and completed ${recovery.completed}, expected ${options.transactions}`);
    }
    for (const [ledger, cluster] of clusters) {
      const left = await preparedCount(cluster);
      const rows = await rowCount(cluster, ledger);
      if (left !== 0) problems.push(`${ledger}: ${left} prepared transaction(s) left`);
      if (rows !== options.transactions) problems.push(`${ledger}: ${rows} rows visible, expected ${options.transactions}`);
    }
    const reopened = new FileDecisionLog({ dir });
    const after = await reopened.open();
    await reopened.close();
    if (after.unfinished !== 0) problems.push(`log: ${after.unfinished} transaction(s) still unfinished after recovery`);

    const rate = Math.round(recovery.completed / seconds);
    const rows: Array<[string, string]> = [
      ['backlog', `${options.transactions} transactions × 2 branches (2 clusters, durable), built in ${generateSeconds.toFixed(1)} s`],
      ['log read back', `${opened.records} records in ${logOpenMs} ms`],
      ['restarted coordinator', `pool ${options.poolSize}/database, recoveryConcurrency ${options.recoveryConcurrency}`],
      ['recovery (start → all complete)', `${seconds.toFixed(2)} s`],
      ['rate', `${rate} transactions/s (${rate * 2} COMMIT PREPARED/s)`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`\n${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n\n`);
    for (const p of problems) progress(`PROBLEM: ${p}`);
    process.stdout.write(
      `${JSON.stringify({
        transactions: options.transactions,
        recoverySeconds: Number(seconds.toFixed(3)),
        transactionsPerSecond: rate,
        logOpenMs,
        logRecords: opened.records,
        poolSize: options.poolSize,
        recoveryConcurrency: options.recoveryConcurrency,
        backlogSeconds: Number(generateSeconds.toFixed(1)),
        ok: problems.length === 0,
      })}\n`,
    );
    return problems.length > 0 ? 1 : 0;
  } finally {
    await cleanup.run();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`recovery bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
