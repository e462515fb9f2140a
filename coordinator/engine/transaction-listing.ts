import { TwopcError } from './ports/protocol';
import type { TxSnapshot } from './ports/decision-log';
import { statusFromSnapshot, TransactionStatus } from './transaction-status';

/**
 * What a listing can select (SPEC §5). `in-doubt`: past `active` and not
 * completed, so some branch may hold a prepared transaction (preparing, or
 * decided while phase 2 is not yet acknowledged everywhere). `heuristic`: a
 * branch's outcome contradicted the decision or could not be learned.
 * Completed transactions are not listed: the log keeps them only for lookups by id.
 */
export const LIST_STATES = ['active', 'preparing', 'committed', 'aborted', 'in-doubt', 'heuristic'] as const;
export type ListState = (typeof LIST_STATES)[number];

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

export interface ListOptions {
  state?: ListState;
  /** 1..1000, default 100. */
  limit?: number;
}

export interface TransactionList {
  /** Oldest first. */
  transactions: TransactionStatus[];
  /** More transactions matched than `limit`. */
  truncated: boolean;
}

const matches: Record<ListState, (s: TransactionStatus) => boolean> = {
  active: (s) => s.state === 'active',
  preparing: (s) => s.state === 'preparing',
  committed: (s) => s.state === 'committed',
  aborted: (s) => s.state === 'aborted',
  'in-doubt': (s) => s.state === 'preparing' || s.state === 'committed' || s.state === 'aborted',
  heuristic: (s) => s.hazards.length > 0,
};

/**
 * Merges the transactions live in this process with the unfinished ones of
 * the log. A live transaction's own view wins (it knows votes the log does
 * not), but hazards are only in the log, so they are taken from there.
 */
export function listTransactions(live: TransactionStatus[], unfinished: TxSnapshot[], options: ListOptions = {}): TransactionList {
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new TwopcError('invalid-input', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`, { field: 'limit' });
  }
  if (options.state !== undefined && !(LIST_STATES as readonly string[]).includes(options.state)) {
    throw new TwopcError('invalid-input', `state must be one of ${LIST_STATES.join(', ')}`, { field: 'state' });
  }
  const byId = new Map(live.map((s) => [s.id, s]));
  for (const snapshot of unfinished) {
    const own = byId.get(snapshot.txId);
    const logged = statusFromSnapshot(snapshot);
    if (!own) byId.set(snapshot.txId, logged);
    else if (logged.hazards.length > 0) byId.set(snapshot.txId, { ...own, hazards: logged.hazards });
  }
  const filter = options.state ? matches[options.state] : () => true;
  const selected = [...byId.values()].filter(filter).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  return { transactions: selected.slice(0, limit), truncated: selected.length > limit };
}
