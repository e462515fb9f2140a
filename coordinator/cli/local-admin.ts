import fs from 'node:fs';
import { Pool } from 'pg';
import type { OrphanRollback, OrphanScan, ResolveResult } from '../engine/admin-operations';
import { ParticipantRegistry } from '../engine/participant-registry';
import type { RecoveryReport } from '../engine/recovery';
import { RetryResult, TransactionEngine } from '../engine/transaction-engine';
import type { ListOptions, TransactionList } from '../engine/transaction-listing';
import type { TransactionStatus } from '../engine/transaction-status';
import type { Outcome } from '../engine/types';
import { isTwopcError, TwopcError } from '../errors';
import type { CompactReport } from '../log/decision-log';
import { FileDecisionLog } from '../log/file/file-decision-log';
import { verifyLog, type VerifyReport } from '../log/file/log-verify';
import { HttpParticipants } from '../participants/http/http-participants';
import { PostgresParticipant } from '../participants/postgres/postgres-participant';
import { historyAnswer } from '../service/admin-answers';
import type { HistoryAnswer } from '../service/admin-schemas';
import type { ServiceConfig } from '../service/service-config';
import type { AdminBackend } from './admin-backend';
import type { InstancesReport } from '../cluster/instances-report';
import { CliError } from './cli-error';
import { EXIT } from './exit-codes';

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

/** Connections per participant database: a CLI run needs few, and must not crowd out the applications. */
const POOL_SIZE = 8;

/**
 * The offline backend: works on the log of a stopped coordinator. It builds
 * a TransactionEngine on the log without calling start(), so nothing runs
 * that the command did not ask for (no automatic recovery, no sweeps); a
 * `recover` command runs the pass itself. Opening takes the log's lock, so it
 * refuses while a coordinator runs on it (`log-locked`, naming its pid).
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
  ) {}

  static async open(options: LocalAdminOptions): Promise<LocalAdmin> {
    const { config, needs } = options;
    // open() would create a missing directory: a mistyped --data-dir must not become a new, empty log.
    if (!fs.existsSync(config.dataDir)) {
      throw new CliError(EXIT.config, `no decision log at ${config.dataDir}: give the coordinator's --data-dir (or TWOPC_DATA_DIR, or dataDir in --config)`);
    }
    if (needs === 'files') return new LocalAdmin(config.dataDir, undefined, async () => undefined);

    const log = new FileDecisionLog({ dir: config.dataDir, ...(options.retentionMs === undefined ? {} : { completedRetentionMs: options.retentionMs }) });
    try {
      await log.open();
    } catch (e) {
      if (isTwopcError(e, 'log-locked')) {
        throw new TwopcError('log-locked', `${e.message}. A coordinator is running on this log: go through it with --url (or TWOPC_URL) instead of working on its files`, { ...e.details });
      }
      throw e;
    }
    const pools: Pool[] = [];
    const postgres: PostgresParticipant[] = [];
    let http: HttpParticipants | undefined;
    if (needs === 'participants') {
      for (const [name, connectionString] of Object.entries(config.databases)) {
        const pool = new Pool({ connectionString, max: POOL_SIZE });
        // An idle connection that dies must not end the CLI; the next use reports it.
        pool.on('error', () => undefined);
        pools.push(pool);
        postgres.push(new PostgresParticipant({ name, pool }));
      }
      if (config.participantSecret) http = new HttpParticipants({ ...config.participantCalls, secret: config.participantSecret });
    }
    const engine = new TransactionEngine({
      log,
      participants: new ParticipantRegistry(postgres, http?.forUrl),
      config: Object.freeze({ ...config.engine, commitWaitMs: options.waitMs }),
    });
    return new LocalAdmin(log.dir, engine, async () => {
      // stop() ends phase-2 retries still running (the next start resumes them), flushes and unlocks the log.
      await engine.stop();
      await http?.close();
      await Promise.allSettled(postgres.map((p) => p.close()));
      await Promise.allSettled(pools.map((p) => p.end()));
    });
  }

  list(options: ListOptions): Promise<TransactionList> {
    return this.need().list(options);
  }

  async show(txId: string): Promise<TransactionStatus> {
    const status = await this.need().status(txId);
    if (!status) throw new TwopcError('not-found', `no transaction ${txId}`, { txId });
    return status;
  }

  async history(txId: string): Promise<HistoryAnswer> {
    return historyAnswer(txId, await this.need().history(txId));
  }

  recover(options: { waitMs?: number; onProgress?(report: Readonly<RecoveryReport>): void }): Promise<RecoveryReport> {
    const engine = this.need();
    return engine.recover({ waitMs: options.waitMs ?? engine.config.commitWaitMs, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  }

  retry(txId: string, waitMs?: number): Promise<RetryResult> {
    const engine = this.need();
    return engine.retry(txId, waitMs ?? engine.config.commitWaitMs);
  }

  resolve(txId: string, outcome: Outcome): Promise<ResolveResult> {
    return this.need().resolve(txId, outcome);
  }

  orphans(): Promise<OrphanScan> {
    return this.need().orphans();
  }

  rollbackOrphans(): Promise<OrphanRollback[]> {
    return this.need().rollbackOrphans();
  }

  compactLog(): Promise<CompactReport> {
    return this.need().compactLog();
  }

  verifyLog(): Promise<VerifyReport> {
    return verifyLog(this.where);
  }

  /** Offline works on a file log only: one process, no leases. */
  async instances(): Promise<InstancesReport> {
    return { store: 'file', self: null, instances: [] };
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
