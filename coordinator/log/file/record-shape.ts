import { DECISION_SOURCES, OUTCOMES } from '../../engine/types';
import type { LogRecord } from '../decision-log';

/** The record types a log holds, as an `as const` array for runtime checks. */
export const RECORD_TYPES = ['begin', 'enlist', 'decision', 'complete', 'hazard'] as const;

type Fields = Record<string, unknown>;

function isObject(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonEmptyString(v: unknown): boolean {
  return typeof v === 'string' && v.length > 0;
}

function branchProblem(b: unknown, field: string): string | undefined {
  if (!isObject(b)) return `${field} must be an object`;
  if (!Number.isInteger(b.branchId) || (b.branchId as number) < 0) return `${field}.branchId must be an integer >= 0`;
  if (!nonEmptyString(b.gid)) return `${field}.gid must be a non-empty string`;
  if (!nonEmptyString(b.participant)) return `${field}.participant must be a non-empty string`;
  if (b.url !== undefined && typeof b.url !== 'string') return `${field}.url must be a string when present`;
  return undefined;
}

/**
 * Why `r` is not a well-formed log record, naming the field, or undefined when
 * it is. Used both on the way in (caller input) and on the way back from disk
 * (a record whose CRC matches but whose shape does not is a bug or a foreign
 * file, and is reported as corruption rather than folded).
 */
export function recordProblem(r: unknown): string | undefined {
  if (!isObject(r)) return 'record must be an object';
  if (!(RECORD_TYPES as readonly unknown[]).includes(r.type)) return `type must be one of ${RECORD_TYPES.join(', ')}`;
  if (!nonEmptyString(r.txId)) return 'txId must be a non-empty string';
  if (typeof r.at !== 'number' || !Number.isFinite(r.at)) return 'at must be a finite number';
  switch (r.type as LogRecord['type']) {
    case 'begin':
      if (typeof r.expiresAt !== 'number' || !Number.isFinite(r.expiresAt)) return 'expiresAt must be a finite number';
      if (r.metadata !== undefined && !isObject(r.metadata)) return 'metadata must be an object when present';
      return undefined;
    case 'enlist':
      return branchProblem(r.branch, 'branch');
    case 'decision': {
      if (!(OUTCOMES as readonly unknown[]).includes(r.outcome)) return `outcome must be one of ${OUTCOMES.join(', ')}`;
      if (!(DECISION_SOURCES as readonly unknown[]).includes(r.source)) return `source must be one of ${DECISION_SOURCES.join(', ')}`;
      if (!Array.isArray(r.branches)) return 'branches must be an array';
      for (let i = 0; i < r.branches.length; i++) {
        const p = branchProblem(r.branches[i], `branches[${i}]`);
        if (p) return p;
      }
      if (r.reason !== undefined) {
        if (!isObject(r.reason)) return 'reason must be an object when present';
        if (typeof r.reason.cause !== 'string' || typeof r.reason.message !== 'string') return 'reason.cause and reason.message must be strings';
      }
      return undefined;
    }
    case 'complete':
      return undefined;
    case 'hazard':
      if (!Number.isInteger(r.branchId) || (r.branchId as number) < 0) return 'branchId must be an integer >= 0';
      if (!nonEmptyString(r.gid)) return 'gid must be a non-empty string';
      if (!nonEmptyString(r.participant)) return 'participant must be a non-empty string';
      if (typeof r.detail !== 'string') return 'detail must be a string';
      return undefined;
  }
}
