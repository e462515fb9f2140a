import type { z } from 'zod';
import { errorFromProblem, problemSchema } from '../../participant-sdk/src';
import type { OrphanRollback, OrphanScan, ResolveResult } from '../engine/admin-operations';
import type { RecoveryReport } from '../engine/recovery';
import type { RetryResult } from '../engine/engine-admin';
import type { SettleResult } from '../engine/settle-operation';
import type { ListOptions, TransactionList } from '../engine/transaction-listing';
import type { TransactionStatus } from '../engine/transaction-status';
import type { Outcome } from '../engine/ports/types';
import { errorMessage, TwopcError } from '../engine/ports/protocol';
import type { CompactReport } from '../engine/ports/decision-log';
import type { VerifyReport } from '../log/file/log-verify';
import {
  compactAnswerSchema,
  historyAnswerSchema,
  instancesReportSchema,
  orphanRollbackAnswerSchema,
  orphanScanSchema,
  recoveryReportSchema,
  resolveAnswerSchema,
  retryAnswerSchema,
  settleAnswerSchema,
  transactionListSchema,
  transactionStatusSchema,
  verifyAnswerSchema,
  type HistoryAnswer,
} from '../service/admin-schemas';
import type { AdminBackend } from './admin-backend';
import type { InstancesReport } from '../cluster/instances-report';
import { CliError, EXIT } from './exit-codes';

export interface AdminClientOptions {
  /** Base URL of the coordinator, e.g. `http://127.0.0.1:7070`. */
  url: string;
  /** The admin token (TWOPC_ADMIN_TOKEN); none for a coordinator running without authentication. */
  token?: string;
  /** Per call, on top of any wait the call asks the coordinator for. Default 30 s. */
  timeoutMs?: number;
}

/**
 * The online backend: calls a running coordinator's `/v1/admin` API, so the
 * coordinator that holds the log does the work. Answers are checked against
 * the admin schemas; problems become the TwopcError of their `code`.
 *
 * @example
 * const admin = new AdminClient({ url: 'http://127.0.0.1:7070', token: process.env.TWOPC_ADMIN_TOKEN });
 * const { transactions } = await admin.list({ state: 'in-doubt' });
 */
export class AdminClient implements AdminBackend {
  readonly mode = 'online';
  readonly where: string;
  private readonly base: string;

  constructor(private readonly options: AdminClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new CliError(EXIT.usage, `--url must be an http(s) URL (got ${JSON.stringify(options.url)})`);
    }
    if (!/^https?:$/.test(parsed.protocol)) throw new CliError(EXIT.usage, `--url must be an http(s) URL (got ${JSON.stringify(options.url)})`);
    this.base = options.url.replace(/\/+$/, '');
    this.where = this.base;
  }

  async list(options: ListOptions): Promise<TransactionList> {
    const query = new URLSearchParams();
    if (options.state) query.set('state', options.state);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    const qs = query.toString() ? `?${query}` : '';
    return (await this.call('GET', `/v1/admin/transactions${qs}`, transactionListSchema)) as TransactionList;
  }

  async show(txId: string): Promise<TransactionStatus> {
    return (await this.call('GET', `/v1/admin/transactions/${encodeURIComponent(txId)}`, transactionStatusSchema)) as TransactionStatus;
  }

  history(txId: string): Promise<HistoryAnswer> {
    return this.call('GET', `/v1/admin/transactions/${encodeURIComponent(txId)}/history`, historyAnswerSchema);
  }

  // Progress is not streamed: the coordinator answers once the pass is done.
  recover(options: { waitMs?: number }): Promise<RecoveryReport> {
    return this.call('POST', '/v1/admin/recover', recoveryReportSchema, options.waitMs === undefined ? {} : { waitMs: options.waitMs }, options.waitMs);
  }

  retry(txId: string, waitMs?: number): Promise<RetryResult> {
    return this.call('POST', `/v1/admin/transactions/${encodeURIComponent(txId)}/retry`, retryAnswerSchema, waitMs === undefined ? {} : { waitMs }, waitMs);
  }

  resolve(txId: string, outcome: Outcome): Promise<ResolveResult> {
    return this.call('POST', `/v1/admin/transactions/${encodeURIComponent(txId)}/resolve`, resolveAnswerSchema, { outcome });
  }

  settle(txId: string, note: string, outcome?: Outcome): Promise<SettleResult> {
    return this.call('POST', `/v1/admin/transactions/${encodeURIComponent(txId)}/settle`, settleAnswerSchema, { note, ...(outcome ? { outcome } : {}) });
  }

  orphans(): Promise<OrphanScan> {
    return this.call('GET', '/v1/admin/orphans', orphanScanSchema);
  }

  async rollbackOrphans(): Promise<OrphanRollback[]> {
    return (await this.call('POST', '/v1/admin/orphans/rollback', orphanRollbackAnswerSchema, {})).results;
  }

  compactLog(): Promise<CompactReport> {
    return this.call('POST', '/v1/admin/log/compact', compactAnswerSchema, {});
  }

  verifyLog(): Promise<VerifyReport> {
    return this.call('GET', '/v1/admin/log/verify', verifyAnswerSchema);
  }

  instances(): Promise<InstancesReport> {
    return this.call('GET', '/v1/admin/instances', instancesReportSchema);
  }

  async close(): Promise<void> {
    // fetch keeps no state that needs closing.
  }

  private async call<S extends z.ZodType>(method: 'GET' | 'POST', path: string, schema: S, body?: unknown, waitMs = 0): Promise<z.output<S>> {
    const url = `${this.base}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: 'error',
        signal: AbortSignal.timeout((this.options.timeoutMs ?? 30_000) + waitMs),
      });
      text = await res.text();
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      throw new TwopcError('coordinator-unavailable', `cannot reach the coordinator at ${this.base}: ${errorMessage(cause ?? e)}`, { url: this.base });
    }
    const json = parseJson(text);
    if (res.ok) {
      const parsed = schema.safeParse(json);
      if (parsed.success) return parsed.data;
      throw new TwopcError('coordinator-unavailable', `${method} ${url} answered ${res.status} with an unexpected body (is ${this.base} a twopc coordinator of this version?)`, { url: this.base });
    }
    throw this.problemError(method, url, res.status, json);
  }

  private problemError(method: string, url: string, status: number, body: unknown): Error {
    const problem = problemSchema.safeParse(body);
    if (!problem.success) return new TwopcError('coordinator-unavailable', `${method} ${url} answered HTTP ${status} without a problem body (is ${this.base} a twopc coordinator?)`, { url: this.base, status });
    const p = problem.data;
    const detail = p.detail ?? p.title;
    // Codes of the HTTP layer itself, which are not engine error codes.
    if (p.code === 'not-ready') return new TwopcError('coordinator-unavailable', `the coordinator at ${this.base} is not ready: ${detail}`, { url: this.base });
    if (p.code === 'route-not-found') return new TwopcError('coordinator-unavailable', `the coordinator at ${this.base} has no admin API at ${new URL(url).pathname} (an older twopc?)`, { url: this.base });
    if (p.code === 'not-supported') return new CliError(EXIT.failure, detail, 'not-supported');
    // A viewer's token: it reads, but actions need an admin's.
    if (p.code === 'forbidden') return new CliError(EXIT.config, `${detail}; use an admin token (TWOPC_ADMIN_TOKEN)`, 'forbidden');
    return errorFromProblem(p, 'coordinator-unavailable', { url: this.base });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
