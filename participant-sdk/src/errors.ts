/**
 * The closed set of errors twopc raises. Every error carries a stable `code`;
 * callers switch on the code, never on the message. One function
 * (`httpStatusOf`, in problem.ts) maps codes to statuses; one
 * (`classifyPgError`, in postgres/) maps SQLSTATEs.
 */
export const ERROR_CODES = [
  'invalid-input', // a caller passed something malformed (names the field)
  'invalid-config', // configuration failed validation (names the field)
  'not-found', // no such transaction
  'state-conflict', // the transaction is not in a state that allows the call
  'transaction-aborted', // the transaction ended in abort; `reason` says why
  'outcome-unknown', // we could not learn whether an operation took effect
  'heuristic-hazard', // a participant's outcome contradicts the decision, or is unknowable
  'participant-unavailable', // a participant could not be reached
  'prepared-transactions-disabled', // max_prepared_transactions = 0
  'log-corrupt', // the decision log has a damaged record that is not the torn tail
  'log-locked', // another process holds the decision log
  'log-unavailable', // the decision log cannot take writes (disk full, I/O error, closed)
  'shutting-down', // the engine is stopping and takes no new work
  'unauthorized', // a call without a valid signature or bearer token
  'payload-too-large', // a request body over the limit
  'coordinator-unavailable', // the coordinator could not be reached, or gave no usable answer
  'fenced', // a coordinator instance whose lease another instance took over: its writes are refused
  'owner-unavailable', // the coordinator instance that owns the transaction holds its lease but cannot be reached now
  'over-capacity', // the coordinator holds as many transactions (running, or outcomes it must remember) as configured: retry later
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class TwopcError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TwopcError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

/** Why a transaction aborted: which branch voted no (if any) and what it said. */
export interface AbortReason {
  /** Short machine-readable cause: `vote-no`, `timeout`, `prepare-failed`, `application`, `admin`, `recovery`... */
  cause: string;
  message: string;
  branchId?: number;
  participant?: string;
  /** SQLSTATE or participant error code, when one caused the abort. */
  sqlState?: string;
}

/**
 * Thrown by `commit` and by `coordinator.transaction(...)` when the transaction
 * aborted. `reason` names the branch that voted no and why.
 *
 * @example
 * try { await coordinator.transaction(work) }
 * catch (e) { if (e instanceof TransactionAbortedError) console.log(e.reason.participant, e.reason.message) }
 */
export class TransactionAbortedError extends TwopcError {
  readonly txId: string;
  readonly reason: AbortReason;

  constructor(txId: string, reason: AbortReason, options?: { cause?: unknown }) {
    const where = reason.participant ? ` (branch ${reason.branchId} on ${reason.participant})` : '';
    super('transaction-aborted', `transaction ${txId} aborted: ${reason.cause}${where}: ${reason.message}`, { txId, reason }, options);
    this.name = 'TransactionAbortedError';
    this.txId = txId;
    this.reason = reason;
  }
}

export function isTwopcError(e: unknown, code?: ErrorCode): e is TwopcError {
  return e instanceof TwopcError && (code === undefined || e.code === code);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
