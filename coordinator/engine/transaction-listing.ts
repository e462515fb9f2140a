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
  /** Skip this many of the matching transactions (paging), default 0. */
  offset?: number;
  /** Only those with a branch on this participant. */
  participant?: string;
  /** Only those whose id starts with this (case-insensitive). */
  idPrefix?: string;
  /** Only those begun at least this long ago. */
  minAgeMs?: number;
  /** The clock `minAgeMs` is measured by; defaults to `Date.now()`. */
  now?: number;
}

export interface TransactionList {
  /** Oldest first. */
  transactions: TransactionStatus[];
  /** More transactions matched than `offset` + `limit`. */
  truncated: boolean;
  /** How many matched in all. */
  total: number;
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
export function listTransactions(live: TransactionStatus[], unfinished: TxSnapshot[], options: ListOptions = {}, acked?: (txId: string) => ReadonlySet<number> | undefined): TransactionList {
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
    const logged = statusFromSnapshot(snapshot, acked?.(snapshot.txId));
    if (!own) byId.set(snapshot.txId, logged);
    else if (logged.hazards.length > 0) byId.set(snapshot.txId, { ...own, hazards: logged.hazards });
  }
  const offset = options.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) throw new TwopcError('invalid-input', 'offset must be an integer >= 0', { field: 'offset' });
  const selected = [...byId.values()].filter(filterOf(options)).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  return { transactions: selected.slice(offset, offset + limit), truncated: selected.length > offset + limit, total: selected.length };
}

/** The conditions of a listing, all of which a transaction must meet. */
function filterOf(options: ListOptions): (s: TransactionStatus) => boolean {
  const tests: Array<(s: TransactionStatus) => boolean> = [];
  if (options.state) tests.push(matches[options.state]);
  const { participant, idPrefix, minAgeMs } = options;
  if (participant !== undefined) tests.push((s) => s.branches.some((b) => b.participant === participant));
  if (idPrefix !== undefined) tests.push((s) => s.id.startsWith(idPrefix.toLowerCase()));
  if (minAgeMs !== undefined) {
    const before = (options.now ?? Date.now()) - minAgeMs;
    tests.push((s) => Date.parse(s.createdAt) <= before);
  }
  return (s) => tests.every((t) => t(s));
}
