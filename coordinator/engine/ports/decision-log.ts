import type { LeaseStore } from './lease-store';
import type { AbortReason, TwopcError } from './protocol';
import type { BranchInfo, DecisionSource, OperatorAction, Outcome } from './types';

/** Transaction begun. Not forced: a lost begin means presumed abort. */
export interface BeginRecord {
  type: 'begin';
  txId: string;
  at: number;
  expiresAt: number;
  metadata?: Record<string, unknown>;
  /**
   * Several coordinator instances on a shared store: the fencing token of the
   * lease of the instance that began it (its owner, until another instance
   * takes that lease over). Absent on a single-instance log.
   */
  owner?: number;
}

/** Branch registered, always before its PREPARE is sent. Not forced. */
export interface EnlistRecord {
  type: 'enlist';
  txId: string;
  at: number;
  branch: BranchInfo;
}

/**
 * The single-assignment decision. A commit is forced together with the list of
 * branches that phase 2 must finish; an abort need not be (no record = abort).
 */
export interface DecisionRecord {
  type: 'decision';
  txId: string;
  at: number;
  outcome: Outcome;
  source: DecisionSource;
  /** The branches phase 2 must finish (read-only branches are left out of a commit). */
  branches: BranchInfo[];
  reason?: AbortReason;
}

/**
 * Every branch acknowledged phase 2 (or, for a transaction decided without a
 * record, its one-phase commit or read-only finish is done). Not forced.
 *
 * It is also the transaction's outcome record: `outcome` says how it ended
 * (the decision's outcome; `commit` for a one-phase commit or read-only
 * votes), which is what a status read or a retried commit needs once the
 * other records are gone. When compaction drops a completed transaction's
 * full records before its retention period is over (the file log keeps a
 * bounded number in full), this record alone is kept until then. A `complete`
 * without `outcome` (written by an older version, or after its transaction
 * was forgotten) proves nothing: it never makes a transaction committed.
 */
export interface CompleteRecord {
  type: 'complete';
  txId: string;
  at: number;
  outcome?: Outcome;
  /**
   * Set only by an operator's settle (a heuristic hazard reconciled by hand):
   * who settled it. Absent when phase 2 finished every branch. A reader that
   * does not know the field drops it and reads an ordinary completion.
   */
  by?: string;
}

/** A participant's outcome contradicts the decision or cannot be known: an operator must look. */
export interface HazardRecord {
  type: 'hazard';
  txId: string;
  at: number;
  branchId: number;
  gid: string;
  participant: string;
  detail: string;
}

/**
 * An operator's action on the transaction (the audit trail: who, when, what),
 * appended before the action runs. Not forced. It changes nothing of the
 * transaction's state: folds skip it, and it is only ever appended to a
 * transaction the log holds unfinished, so it never makes one exist.
 */
export interface ActionRecord {
  type: 'action';
  txId: string;
  at: number;
  /** The name of the operator's token (or `cli:<user>` for the offline CLI). */
  by: string;
  action: OperatorAction;
  /** What the operator wrote of it (required by `settle`: how the hazard was reconciled); at most MAX_ACTION_NOTE_LENGTH characters. */
  note?: string;
}

export type LogRecord = BeginRecord | EnlistRecord | DecisionRecord | CompleteRecord | HazardRecord | ActionRecord;
export type AppendableRecord = BeginRecord | EnlistRecord | CompleteRecord | HazardRecord | ActionRecord;

/** How an append may be written (a hint: a store may ignore it). */
export interface AppendOptions {
  /**
   * Nobody needs this record stored before the end of the current turn of the
   * event loop (a registration that only a later PREPARE waits for: an
   * in-process branch, or a held branch over HTTP, which is prepared only
   * through a commit that waits for it): the store may hold it until then, to
   * store it with whatever comes next.
   * Order is kept either way; the returned promise still says when it is stored.
   */
  unhurried?: boolean;
}

/** What a log knows of one transaction, folded from its records. */
export interface TxSnapshot {
  txId: string;
  createdAt: number;
  expiresAt: number;
  metadata?: Record<string, unknown>;
  /** The fencing token of the lease that owns it (from its begin record); absent on a single-instance log. */
  owner?: number;
  /** Every registered branch, in branchId order. */
  branches: BranchInfo[];
  decision?: DecisionRecord;
  /**
   * How the transaction ended or will end, when its records prove it: the
   * decision's outcome; for one completed without a decision record, what its
   * `complete` record says (a one-phase commit or read-only votes commit).
   * Undefined: undecided, or a completion that proves nothing.
   */
  outcome?: Outcome;
  completed: boolean;
  completedAt?: number;
  hazards: HazardRecord[];
}

export interface OpenReport {
  /** Records read back (after any torn tail was cut). */
  records: number;
  /** Set when a torn final record was found and cut off. */
  tornTail?: { file: string; offset: number; bytes: number };
  /** Transactions that are not completed. */
  unfinished: number;
}

/** See DecisionLog.held. */
export interface HeldCounts {
  inFull: number;
  outcomes: number;
}

export interface CompactReport {
  /** Transactions forgotten (completed and past retention). */
  forgotten: number;
  /** Transactions kept. */
  kept: number;
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * The seam between the engine and durable storage. Implementations (file,
 * PostgreSQL, Redis) own their connections and files; none of their types
 * leak through this interface. Every store must pass test/log/conformance.
 *
 * Rules every implementation keeps:
 * - `decide` is a single-assignment register: the first decision for a
 *   transaction wins, and every caller gets the winning record back.
 * - A commit decision is durable (fsync / durable commit) before `decide`
 *   resolves; concurrent forced decisions may share one flush (group commit).
 * - Records of one transaction are kept in the order they were appended.
 * - A store never guesses what a failed write left behind: the file store
 *   refuses further decisions with `log-unavailable` (its memory may hold a
 *   commit the disk does not); shared stores (PostgreSQL, Redis) keep nothing
 *   in memory that could disagree, and read the register back after an error.
 */
export interface DecisionLog {
  /** `file`, `postgres` or `redis`. */
  readonly kind: string;
  /**
   * Set once the store refuses every write for good (the file log after a
   * failed write or fsync: it cannot know what reached the disk). The
   * coordinator is then not ready until it is restarted. Stores whose
   * failures are transient leave it undefined.
   */
  readonly failure?: TwopcError;
  /** Opens the store and reads it back. Throws `log-locked`, `log-corrupt`. */
  open(): Promise<OpenReport>;
  /** Appends a record that need not be forced. Resolves once the store has it (for a file: written, not synced). */
  append(record: AppendableRecord, options?: AppendOptions): Promise<void>;
  /** The register. Resolves with the winning decision, durable if it is a commit. */
  decide(decision: Omit<DecisionRecord, 'type'>): Promise<DecisionRecord>;
  get(txId: string): Promise<TxSnapshot | undefined>;
  /** Every transaction that is not completed, oldest first. */
  unfinished(): Promise<TxSnapshot[]>;
  /** Every record of a transaction, in order (empty once forgotten). */
  history(txId: string): Promise<LogRecord[]>;
  /** Forgets completed transactions older than the retention period and reclaims space. */
  compact(): Promise<CompactReport>;
  /**
   * Compacts now if the store's own timer would soon (something written
   * since, or enough past retention), and settles once done; otherwise does
   * nothing. What the service calls when it goes idle, so the collection that
   * follows gives back what the compaction allocated. Absent: nothing to do.
   *
   * `makeRoom`: the engine refuses new transactions because the log holds
   * `maxRememberedOutcomes` outcomes. Then any outcome past its retention is
   * worth a compaction (not only half of those held, the idle rule), and
   * nothing else is (what was written since waits for the timer): at most one
   * such compaction per compaction interval, so a flood of refused begins
   * never rewrites the snapshot back to back.
   */
  compactIfDue?(options?: { makeRoom?: boolean }): Promise<void>;
  /** Flushes and releases the store (and its lock). */
  close(): Promise<void>;
  /** Resolves once every write made so far has been answered by the store (shared stores; the file log's close does it). */
  idle?(): Promise<void>;
  /**
   * Makes every record appended (and resolved) so far durable, as a forced
   * decision is. The engine calls it before a one-phase COMMIT: that COMMIT
   * is the decision, so the transaction's registration must survive a crash
   * that loses unsynced writes, or recovery would presume abort for a
   * committed transaction. Absent: appends are durable once resolved (Redis
   * with `appendfsync always`).
   */
  makeDurable?(): Promise<void>;
  /**
   * How long the store keeps a completed transaction's outcome after it
   * completed (ms), when it forgets by time (the file log). Carried
   * registration is offered only on a store that says: a retried carried
   * commit must be refused before its outcome can be forgotten.
   */
  readonly retentionMs?: number;
  /**
   * What the store holds in this process's memory: transactions with their
   * full records (running, or completed and kept in full) and completed ones
   * held only as their outcome. Absent on stores that hold nothing in memory
   * (PostgreSQL, Redis). The engine refuses new transactions past its caps on them.
   */
  held?(): HeldCounts;
  /** How many unfinished transactions have a hazard, without listing them (what a metrics scrape asks). Absent: the engine counts `unfinished()`. */
  unfinishedWithHazards?(): Promise<number>;
  /**
   * Shared stores (PostgreSQL, Redis): leases of the coordinator instances
   * sharing the log. Once this process registers one, every write carries its
   * fencing token, and the store refuses them (`fenced`) after another
   * instance took the lease over. Absent on the file store (one process, by its lock).
   */
  readonly leases?: LeaseStore;
}
