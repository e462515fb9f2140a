import type { LogRecord } from '../engine/ports/decision-log';
import type { HistoryAnswer, HistoryEvent } from './admin-schemas';

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * A transaction's audit trail as the admin API and the CLI show it: every
 * logged record in order, its times in ISO 8601, without the repeated txId.
 * Shared by the HTTP route and the CLI's offline mode so both print the same.
 *
 * @example
 * historyAnswer(id, await engine.history(id)) // { id, events: [{ type: 'begin', at: '2025-…', expiresAt: '…' }, …] }
 */
export function historyAnswer(txId: string, records: readonly LogRecord[]): HistoryAnswer {
  return { id: txId, events: records.map(historyEvent) };
}

function historyEvent(record: LogRecord): HistoryEvent {
  const { txId: _txId, at, ...rest } = record;
  const event = { ...rest, at: iso(at) } as HistoryEvent;
  if (record.type === 'begin') event.expiresAt = iso(record.expiresAt);
  return event;
}
