import fs from 'node:fs';
import type { OrphanRollback, OrphanScan, ResolveResult } from '../engine/admin-operations';
import type { RecoveryReport } from '../engine/recovery';
import type { RetryResult } from '../engine/engine-admin';
import type { SettleResult } from '../engine/settle-operation';
import { TransactionEngine } from '../engine/transaction-engine';
import type { ListOptions, TransactionList } from '../engine/transaction-listing';
import type { TransactionStatus } from '../engine/transaction-status';
import type { Outcome } from '../engine/ports/types';
import { isTwopcError, TwopcError } from '../engine/ports/protocol';
import type { CompactReport, DecisionLog } from '../engine/ports/decision-log';
import { FileDecisionLog } from '../log/file/file-decision-log';
import { verifyLog, type VerifyReport } from '../log/file/log-verify';
import { historyAnswer, type HistoryAnswer } from '../service/admin-schemas';
import type { ServiceConfig } from '../assembly/service-config';
import type { AdminBackend } from './admin-backend';
import { instancesReport, type InstancesReport, type LeaseSource } from '../cluster/instances-report';
import type { LeaseStore } from '../engine/ports/lease-store';
import { assembleCoordinator, decisionLogFromConfig, type AssembledCoordinator } from '../assembly/assemble-coordinator';
import os from 'node:os';
import { CliError, EXIT } from './exit-codes';

/** What a command needs of a stopped coordinator. */
export type LocalNeeds =
  /** Nothing opened: `log verify` reads the files without the lock. */
  | 'files'
  /** The log, locked, without any participant: reads, and compaction. */
  | 'log'
  /** The log and the participants of the config: anything that ends branches or lists prepared ones. */
  | 'participants';

export interface LocalAdminOptions {
  config: ServiceConfig;
  needs: LocalNeeds;
  /** How long operations wait for phase 2 (the engine's commitWaitMs here): after it, the rest is left to the next start. */
  waitMs: number;
  /** Completed transactions are kept this long before `compactLog` forgets them (default: the file log's 10 minutes). */
  retentionMs?: number;
}

/**
 * The offline backend: works on the log of a stopped coordinator. It builds
 * a TransactionEngine on the log without calling start(), so nothing runs
 * that the command did not ask for (no automatic recovery, no sweeps); a
 * `recover` command runs the pass itself. Opening takes the log's lock, so it
 * refuses while a coordinator runs on it (`log-locked`, naming its pid).
 *
 * On a shared log (PostgreSQL, Redis: `--log`, TWOPC_LOG) there is no lock:
 * coordinators may be running on it. Commands that end transactions join as
 * one more instance for their run (a lease named `twopc-cli:<host>:<pid>`):
 * they take over the leases that expired — instances that are dead — and act
 * only on those transactions (and on any nobody owns); a live instance's are
 * left to it. The lease is given up at the end, so anything left is taken over
 * by a running instance at once.
 *
 * @example
 * const admin = await LocalAdmin.open({ config, needs: 'log', waitMs: 60_000 });
 * try { console.log(await admin.list({ state: 'in-doubt' })) } finally { await admin.close() }
 */
export class LocalAdmin implements AdminBackend {
  readonly mode = 'offline';

  private constructor(
    readonly where: string,
    private readonly engine: TransactionEngine | undefined,
    private readonly release: () => Promise<void>,
    private readonly leases?: LeaseSource & { store: string },
  ) {}

  static async open(options: LocalAdminOptions): Promise<LocalAdmin> {
    const { config } = options;
    if (config.log !== undefined) {
      const log = decisionLogFromConfig(config, { onWarning: () => undefined, ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }) });
      if (log.leases) return LocalAdmin.openShared(log, log.leases, options);
      if (log instanceof FileDecisionLog) return LocalAdmin.openFile(log.dir, options);
    }
    return LocalAdmin.openFile(config.dataDir, options);
  }

  private static async openFile(dir: string, options: LocalAdminOptions): Promise<LocalAdmin> {
    const { needs } = options;
    // open() would create a missing directory: a mistyped --data-dir must not become a new, empty log.
    if (!fs.existsSync(dir)) {
      throw new CliError(EXIT.config, `no decision log at ${dir}: give the coordinator's --data-dir (or TWOPC_DATA_DIR, or dataDir in --config)`);
    }
    if (needs === 'files') return new LocalAdmin(dir, undefined, async () => undefined);

    const log = new FileDecisionLog({ dir, ...(options.retentionMs === undefined ? {} : { completedRetentionMs: options.retentionMs }) });
    try {
      await log.open();
    } catch (e) {
      if (isTwopcError(e, 'log-locked')) {
        throw new TwopcError('log-locked', `${e.message}. A coordinator is running on this log: go through it with --url (or TWOPC_URL) instead of working on its files`, { ...e.details });
      }
      throw e;
    }
    const { engine, close } = await offlineCoordinator(log, options);
    // stop() ends phase-2 retries still running (the next start resumes them), flushes and unlocks the log.
    return new LocalAdmin(log.dir, engine, close);
  }

  private static async openShared(log: DecisionLog, leases: LeaseStore, options: LocalAdminOptions): Promise<LocalAdmin> {
    const where = (log as { where?: string }).where ?? log.kind;
    await log.open();
    let coordinator: AssembledCoordinator;
    try {
      coordinator = await offlineCoordinator(log, options, options.needs === 'participants');
    } catch (e) {
      await log.close();
      throw e;
    }
    const { engine, membership, close } = coordinator;
    const source: LeaseSource & { store: string } = membership
      ? { store: log.kind, refresh: () => membership.refresh(), get token() { return membership.token; } }
      : { store: log.kind, refresh: () => leases.view(), token: undefined };
    // stop() also gives the lease up (ownership.stop), so a running instance takes over what is left.
    return new LocalAdmin(where, engine, close, source);
  }

  list(options: ListOptions): Promise<TransactionList> {
    return this.need().admin.list(options);
  }

  async show(txId: string): Promise<TransactionStatus> {
    const status = await this.need().status(txId);
    if (!status) throw new TwopcError('not-found', `no transaction ${txId}`, { txId });
    return status;
  }

  async history(txId: string): Promise<HistoryAnswer> {
    return historyAnswer(txId, await this.need().admin.history(txId));
  }

  recover(options: { waitMs?: number; onProgress?(report: Readonly<RecoveryReport>): void }): Promise<RecoveryReport> {
    const engine = this.need();
    return engine.admin.recover({ waitMs: options.waitMs ?? engine.config.commitWaitMs, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  }

  retry(txId: string, waitMs?: number): Promise<RetryResult> {
    const engine = this.need();
    return engine.admin.retry(txId, waitMs ?? engine.config.commitWaitMs, offlineOperator());
  }

  resolve(txId: string, outcome: Outcome): Promise<ResolveResult> {
    return this.need().admin.resolve(txId, outcome, offlineOperator());
  }

  settle(txId: string, note: string, outcome?: Outcome): Promise<SettleResult> {
    return this.need().admin.settle(txId, { by: offlineOperator(), note, ...(outcome ? { outcome } : {}) });
  }

  orphans(): Promise<OrphanScan> {
    return this.need().admin.orphans();
  }

  rollbackOrphans(): Promise<OrphanRollback[]> {
    return this.need().admin.rollbackOrphans(offlineOperator());
  }

  compactLog(): Promise<CompactReport> {
    return this.need().admin.compactLog();
  }

  verifyLog(): Promise<VerifyReport> {
    if (this.leases) {
      throw new TwopcError('invalid-input', `log verify checks a file decision log; ${this.where} is a ${this.leases.store} log: check it with that store's own tools`, { field: 'log' });
    }
    return verifyLog(this.where);
  }

  /** The leases of a shared log; a file log has one process and none. */
  instances(): Promise<InstancesReport> {
    return instancesReport(this.leases?.store ?? 'file', this.leases);
  }

  close(): Promise<void> {
    return this.release();
  }

  private need(): TransactionEngine {
    // A command asks for what it needs when it opens; reaching here without an engine is a bug of that command.
    if (!this.engine) throw new Error('LocalAdmin was opened without its log');
    return this.engine;
  }
}

/**
 * The engine an offline command drives (never started: no automatic recovery,
 * no sweeps), and how to let go of it. `join`: on a shared log, this run joins
 * the instances for its duration (commands that end transactions).
 */
function offlineCoordinator(log: DecisionLog, options: LocalAdminOptions, join = false): Promise<AssembledCoordinator> {
  const { config } = options;
  return assembleCoordinator({
    config,
    role: 'offline',
    log,
    participants: options.needs === 'participants',
    engineConfig: Object.freeze({ ...config.engine, commitWaitMs: options.waitMs }),
    ...(join
      ? {
          // Not reachable by the running instances: a request for a transaction it holds waits (owner-unavailable) until it is done.
          membership: { identity: () => ({ name: `twopc-cli:${os.hostname()}:${process.pid}`, url: 'http://twopc-cli.invalid' }) },
        }
      : {}),
  });
}

/** Who the history records for an offline command's action: the local user (the admin API records a token's name). */
function offlineOperator(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the host still says where it ran.
  }
  return `cli:${user}@${os.hostname()}`.slice(0, 200);
}
