import type { AppendableRecord, DecisionRecord, LogRecord } from '../../engine/ports/decision-log';
import { appendTypeProblem, invalidRecord, storedRecordCorrupt } from '../log-errors';
import { normalizeRecord, recordJson, recordProblem } from '../record-shape';

/** A record as a store keeps it: the normalized, frozen copy and its JSON text. */
export interface EncodedRecord<T extends LogRecord = LogRecord> {
  record: T;
  json: string;
}

/**
 * Validates an append and encodes it as the shared stores keep it (the JSON
 * the file store frames). Throws `invalid-input` naming the field.
 */
export function encodeAppend(record: AppendableRecord): EncodedRecord<AppendableRecord> {
  const problem = appendTypeProblem(record) ?? recordProblem(record);
  if (problem) throw invalidRecord('append', problem);
  const copy = normalizeRecord(record) as AppendableRecord;
  return { record: copy, json: recordJson(copy) };
}

/** Validates a decision and encodes it. Throws `invalid-input` naming the field. */
export function encodeDecision(decision: Omit<DecisionRecord, 'type'>): EncodedRecord<DecisionRecord> {
  const problem = recordProblem(decision, 'decision');
  if (problem) throw invalidRecord('decide', problem);
  const copy = normalizeRecord(decision as DecisionRecord, 'decision') as DecisionRecord;
  return { record: copy, json: recordJson(copy) };
}

/**
 * Parses a stored record back. A text that is not JSON, or not a well-formed
 * record, is `log-corrupt` naming `location`: acting on a half-read decision
 * would be a guess.
 */
export function decodeRecord(json: string, where: string, location: string): LogRecord {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw storedRecordCorrupt(where, location, `not JSON (${(e as Error).message})`);
  }
  const problem = recordProblem(value);
  if (problem) throw storedRecordCorrupt(where, location, problem);
  return normalizeRecord(value as LogRecord);
}
