import fs from 'node:fs';
import type { Leg } from './bank-schema';

/** Kinds of transaction the workload runs. */
export const TX_KINDS = ['pair', 'triple', 'local', 'vote-no', 'client-abort', 'abandon'] as const;
export type TxKind = (typeof TX_KINDS)[number];

/**
 * What the client knows of a transaction's outcome:
 * - `ok`: commit answered 200 or 202 — it must be visible;
 * - `failed`: the client knows it did not commit — commit answered 409
 *   (aborted), or the client never sent commit (it aborted, or gave up
 *   after a failed service call, or abandoned the transaction) — it must not be visible;
 * - `unknown`: commit was sent and no definite answer came (timeout, reset,
 *   5xx) — either is allowed, but all or nothing.
 */
export type ClientOutcome = 'ok' | 'failed' | 'unknown';

/** One HTTP call the client made and what it saw: a status, or the transport error. */
export interface CallRecord {
  what: string;
  status: number | null;
  code?: string;
  error?: string;
  ms: number;
}

/** One transaction as the client lived it. */
export interface TxRecord {
  /** Plan number (the n-th transaction drawn from the seed). */
  seq: number;
  id: string;
  kind: TxKind;
  mode: 'held' | 'eager';
  legs: Leg[];
  /** Ledger numbers the client called, in order, and which of them was told to vote no. */
  ledgers: number[];
  sabotaged?: number;
  begunAt: number;
  endedAt: number;
  calls: CallRecord[];
  /** Whether the client sent commit (if not, nothing may become visible). */
  commitSent: boolean;
  outcome: ClientOutcome;
  /** Why, in a few words (`commit 200`, `commit timeout`, `ledger_1 503 then abort 200`...). */
  why: string;
}

/**
 * The run's history: every transaction as its client saw it, kept in memory
 * for the checker and appended to a JSON-lines file as it happens, so a run
 * that dies still leaves what it did.
 */
export class History {
  readonly records: TxRecord[] = [];
  /** Begin calls that got no transaction id (refused, unanswered): nothing was started under our name. */
  beginFailures = 0;
  private readonly out: fs.WriteStream;

  constructor(readonly file: string) {
    this.out = fs.createWriteStream(file, { flags: 'a' });
  }

  add(record: TxRecord): void {
    this.records.push(record);
    this.out.write(`${JSON.stringify(record)}\n`);
  }

  byId(): Map<string, TxRecord> {
    return new Map(this.records.map((r) => [r.id, r]));
  }

  count(outcome: ClientOutcome): number {
    return this.records.filter((r) => r.outcome === outcome).length;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.out.end(() => resolve()));
  }
}
