import { randomBytes } from 'node:crypto';
import { TwopcError } from '../../engine/ports/protocol';
import type { LeaseStore } from '../../engine/ports/lease-store';
import type { AppendableRecord, CompactReport, DecisionLog, DecisionRecord, LogRecord, OpenReport, TxSnapshot } from '../../engine/ports/decision-log';
import { logUnreachable, volatileWarning } from '../log-errors';
import { StoreLifecycle } from '../store-lifecycle';
import { foldTransaction, foldUnfinished } from './fold-records';
import { OrderedBatcher, type BatchLane } from './ordered-batcher';
import { decodeRecord, encodeAppend, encodeDecision } from './record-text';
import { DEFAULT_RETRY, retryWrite, type RetryPolicy } from './retry-write';
import type { ResolvedSharedStoreOptions } from './store-options';

/** One write in a batch, as either store sends it. */
export interface SharedWrite {
  txId: string;
  type: LogRecord['type'];
  /** The record's JSON text, stored and read back byte for byte. */
  json: string;
  at: number;
  /** Unique per append (null for a decision): what lets an append batch cut off mid-flight, or resent, find itself already stored. */
  opId: string | null;
  /** The fencing token of the lease this write was made under (null: none), fixed when it is made, not when it is sent. */
  token: number | null;
}

/** The batches a write goes in: appends and decisions each on a lane of their own, or one lane for both. */
export type WriteLane = 'appends' | 'decisions' | 'both';

/** What a store tells the front about itself. */
export interface SharedLogSpec<O extends ResolvedSharedStoreOptions> {
  options: O;
  /** The server (without password) and the schema or namespace, as messages name it. */
  where: string;
  /** The store's class, as a refusal to open twice names it. */
  className: string;
  /** Batches in flight at once: per lane, or on the one lane both kinds share. */
  inFlight: { appends: number; decisions: number } | { both: number };
}

/**
 * What the PostgreSQL and Redis decision logs do alike: the store's life
 * (StoreLifecycle), group commit (OrderedBatcher), the register's front
 * (racing deciders of one instance share one write; every caller gets the
 * winner), fencing tokens, retries through lost connections, folding the
 * records read back into snapshots (the file store's rules).
 *
 * A store extends it and supplies only what differs: its connections and
 * durability check (`connect`, `disconnect`), how a batch is written
 * (`writeBatch`, which resolves each decision with the winner's JSON), how
 * records are read (`history`, `unfinishedRecords`), compaction, and which
 * failures are worth another attempt (`isTransient`).
 */
export abstract class SharedDecisionLog<O extends ResolvedSharedStoreOptions> implements DecisionLog {
  abstract readonly kind: 'postgres' | 'redis';
  /** The server (without password) and the schema or namespace, as messages name it. */
  readonly where: string;
  /** Coordinator instances sharing this log: their leases, whose tokens fence this log's writes. */
  abstract readonly leases: LeaseStore;
  protected readonly o: O;
  protected readonly life: StoreLifecycle;
  protected readonly retry: RetryPolicy;
  private readonly batcher: OrderedBatcher<SharedWrite, string | undefined>;
  private readonly decisionLane: number;
  /** Decisions this instance has in flight: racing deciders here share one write and its winner. */
  private readonly deciding = new Map<string, Promise<DecisionRecord>>();
  private readonly instance = randomBytes(6).toString('base64url');
  private ops = 0;
  /** The fencing token every write carries once this process holds a lease (see `leases`). */
  private fenceToken: number | null = null;

  protected constructor(spec: SharedLogSpec<O>) {
    this.o = spec.options;
    this.where = spec.where;
    this.life = new StoreLifecycle(spec.where, spec.className);
    this.retry = { ...DEFAULT_RETRY, deadlineMs: spec.options.retryDeadlineMs };
    const maxBatch = spec.options.groupCommit ? spec.options.maxBatch : 1;
    const lane = (name: WriteLane, maxInFlight: number): BatchLane<SharedWrite, string | undefined> => ({ maxBatch, maxInFlight, run: (ops) => this.writeBatch(name, ops) });
    const lanes = 'both' in spec.inFlight ? [lane('both', spec.inFlight.both)] : [lane('appends', spec.inFlight.appends), lane('decisions', spec.inFlight.decisions)];
    this.batcher = new OrderedBatcher(lanes);
    this.decisionLane = lanes.length - 1;
  }

  /** Batches sent and the writes they carried, since construction (appends and decisions together). */
  get writeCounts(): { batches: number; writes: number } {
    return { batches: this.batcher.counts.batches, writes: this.batcher.counts.items };
  }

  open(): Promise<OpenReport> {
    return this.life.open(
      () => this.connect(),
      () => this.abandon(),
    );
  }

  // Async, so a refusal or a malformed record is a rejection; nothing before `submit` awaits, so
  // writes issued in one synchronous run still go in one batch.
  async append(record: AppendableRecord): Promise<void> {
    const refusal = this.life.refusal();
    if (refusal) throw refusal;
    const { record: r, json } = encodeAppend(record);
    await this.batcher.submit(0, { txId: r.txId, type: r.type, json, at: r.at, opId: `${this.instance}:${++this.ops}`, token: this.fenceToken });
  }

  async decide(decision: Omit<DecisionRecord, 'type'>): Promise<DecisionRecord> {
    const refusal = this.life.refusal();
    if (refusal) throw refusal;
    const encoded = encodeDecision(decision);
    const txId = encoded.record.txId;
    const pending = this.deciding.get(txId);
    if (pending) return pending;
    const winner = this.batcher
      .submit(this.decisionLane, { txId, type: 'decision', json: encoded.json, at: encoded.record.at, opId: null, token: this.fenceToken })
      .then((json) => (json === encoded.json ? encoded.record : (this.decode(json!, this.decisionLocation(txId)) as DecisionRecord)))
      .finally(() => this.deciding.delete(txId));
    this.deciding.set(txId, winner);
    return winner;
  }

  async get(txId: string): Promise<TxSnapshot | undefined> {
    return foldTransaction(txId, await this.history(txId));
  }

  async unfinished(): Promise<TxSnapshot[]> {
    return foldUnfinished(await this.unfinishedRecords());
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  /** Waits for writes in flight, then closes the store's connections. */
  close(): Promise<void> {
    return this.life.close(async () => {
      await this.batcher.idle();
      await this.disconnect();
    });
  }

  abstract history(txId: string): Promise<LogRecord[]>;
  abstract compact(): Promise<CompactReport>;

  /** Connects, checks the server's durability (see `refuseIfVolatile`) and the data layout, and counts what is stored. */
  protected abstract connect(): Promise<OpenReport>;
  /** Closes the connections, once the writes in flight are answered. */
  protected abstract disconnect(): Promise<void>;
  /**
   * Writes one batch, its writes in order (a transaction's may share it), as
   * one round trip and one commit; resolves with one result per write: for a
   * decision, the winner's JSON (its own when it won).
   */
  protected abstract writeBatch(lane: WriteLane, ops: SharedWrite[]): Promise<Array<string | undefined>>;
  /** The records of every unfinished transaction, transactions in the order first seen and each one's records in order. */
  protected abstract unfinishedRecords(): Promise<LogRecord[]>;
  /** Where a transaction's decision is kept, as a corrupt-record error names it. */
  protected abstract decisionLocation(txId: string): string;
  /** Whether an attempt that failed with `e` may be made again. */
  protected abstract isTransient(e: unknown): boolean;

  /** Releases what a failed open() took. */
  protected abandon(): Promise<void> {
    return this.disconnect();
  }

  /** What a `log-unavailable` names as the cause of the last failed attempt. */
  protected failureReason(e: unknown): unknown {
    return e;
  }

  /** Told of each failed attempt before it is judged (retried or given up). */
  protected attemptFailed(_e: unknown): void {}

  /** From now on every write carries `token` (this process registered a lease). */
  protected fenceWith(token: number): void {
    this.fenceToken = token;
  }

  protected decode(json: string, location: string): LogRecord {
    return decodeRecord(json, this.where, location);
  }

  /** Retries `attempt` through transient failures until `retryDeadlineMs`; then `log-unavailable` (a TwopcError is final as is). */
  protected withRetry<T>(operation: string, attempt: () => Promise<T>): Promise<T> {
    const once = () =>
      attempt().catch((e: unknown) => {
        this.attemptFailed(e);
        throw e;
      });
    return retryWrite(once, (e) => this.isTransient(e), this.retry, (e, n) => (e instanceof TwopcError ? e : logUnreachable(this.where, operation, this.failureReason(e), n)));
  }

  /** What open() does with what the durability check found wrong: refuses it, or, with allowVolatile, warns loudly. */
  protected refuseIfVolatile(refusal: TwopcError | undefined): void {
    if (!refusal) return;
    if (!this.o.allowVolatile) throw refusal;
    this.o.onWarning(volatileWarning(refusal));
  }

  /** What a batch under a lease that another instance took over fails with. */
  protected fenced(token: number | null): TwopcError {
    return new TwopcError(
      'fenced',
      `decision log ${this.where}: this coordinator's lease (token ${token}) was taken over by another instance; its writes are refused (it must register a new lease)`,
      { token },
    );
  }
}

/** The oldest lease among a batch's writes (null when none was made under a lease). */
export function oldestToken(ops: readonly SharedWrite[]): number | null {
  let token: number | null = null;
  for (const o of ops) if (o.token !== null && (token === null || o.token < token)) token = o.token;
  return token;
}
