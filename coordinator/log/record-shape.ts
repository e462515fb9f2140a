import { DECISION_SOURCES, MAX_ACTION_NOTE_LENGTH, OPERATOR_ACTIONS, OUTCOMES } from '../engine/ports/types';
import type { AbortReason } from '../engine/ports/protocol';
import type { BranchInfo } from '../engine/ports/types';
import type { LogRecord } from '../engine/ports/decision-log';

/** The record types a log holds, as an `as const` array for runtime checks. */
export const RECORD_TYPES = ['begin', 'enlist', 'decision', 'complete', 'hazard', 'action'] as const;

type Fields = Record<string, unknown>;

function isObject(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonEmptyString(v: unknown): boolean {
  return typeof v === 'string' && v.length > 0;
}

// A branch's commit proof: a PostgreSQL xid8 in decimal (below 2^64: at most 20 digits), after the
// cluster history it belongs to (`<system identifier>.<timeline>:`; absent in records of older versions).
const XID_PATTERN = /^(-?[0-9]{1,20}\.[0-9]{1,10}:)?[0-9]{1,20}$/;

function branchProblem(b: unknown, field: string): string | undefined {
  if (!isObject(b)) return `${field} must be an object`;
  if (!Number.isInteger(b.branchId) || (b.branchId as number) < 0) return `${field}.branchId must be an integer >= 0`;
  if (!nonEmptyString(b.gid)) return `${field}.gid must be a non-empty string`;
  if (!nonEmptyString(b.participant)) return `${field}.participant must be a non-empty string`;
  if (b.url !== undefined && typeof b.url !== 'string') return `${field}.url must be a string when present`;
  if (b.xid !== undefined && (typeof b.xid !== 'string' || !XID_PATTERN.test(b.xid))) return `${field}.xid must be a transaction id in decimal (after <system identifier>.<timeline>:) when present`;
  return undefined;
}

/**
 * Why `r` is not a well-formed log record, or undefined when it is. Every
 * message starts with the name of the offending field (callers report it). Used both on the way in (caller input) and on the way back from disk
 * (a record whose CRC matches but whose shape does not is a bug or a foreign
 * file, and is reported as corruption rather than folded).
 */
export function recordProblem(r: unknown, type: unknown = isObject(r) ? r.type : undefined): string | undefined {
  if (!isObject(r)) return 'record must be an object';
  if (!(RECORD_TYPES as readonly unknown[]).includes(type)) return `type must be one of ${RECORD_TYPES.join(', ')}`;
  if (!nonEmptyString(r.txId)) return 'txId must be a non-empty string';
  if (typeof r.at !== 'number' || !Number.isFinite(r.at)) return 'at must be a finite number';
  switch (type as LogRecord['type']) {
    case 'begin':
      if (typeof r.expiresAt !== 'number' || !Number.isFinite(r.expiresAt)) return 'expiresAt must be a finite number';
      if (r.metadata !== undefined && !isObject(r.metadata)) return 'metadata must be an object when present';
      if (r.owner !== undefined && (!Number.isSafeInteger(r.owner) || (r.owner as number) < 1)) return 'owner must be an integer >= 1 when present';
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
      if (r.outcome !== undefined && !(OUTCOMES as readonly unknown[]).includes(r.outcome)) return `outcome must be one of ${OUTCOMES.join(', ')} when present`;
      if (r.by !== undefined && (!nonEmptyString(r.by) || (r.by as string).length > 200)) return 'by must be a string of 1 to 200 characters when present';
      return undefined;
    case 'hazard':
      if (!Number.isInteger(r.branchId) || (r.branchId as number) < 0) return 'branchId must be an integer >= 0';
      if (!nonEmptyString(r.gid)) return 'gid must be a non-empty string';
      if (!nonEmptyString(r.participant)) return 'participant must be a non-empty string';
      if (typeof r.detail !== 'string') return 'detail must be a string';
      return undefined;
    case 'action':
      if (!nonEmptyString(r.by) || (r.by as string).length > 200) return 'by must be a string of 1 to 200 characters';
      if (!(OPERATOR_ACTIONS as readonly unknown[]).includes(r.action)) return `action must be one of ${OPERATOR_ACTIONS.join(', ')}`;
      if (r.note !== undefined && (!nonEmptyString(r.note) || (r.note as string).length > MAX_ACTION_NOTE_LENGTH)) return `note must be a string of 1 to ${MAX_ACTION_NOTE_LENGTH} characters when present`;
      return undefined;
  }
}

// -0 would serialize as 0: memory must hold what a reopen reads back.
const num = (n: number): number => (n === 0 ? 0 : n);

const BRANCH_FIELDS = ['branchId', 'gid', 'participant', 'url', 'xid'] as const;

/**
 * Already what copyBranch would make of it: frozen, a plain object, only the
 * interface's fields (in its order), none undefined, no -0. The engine makes
 * its branches so, and the log keeps that object instead of a copy: one
 * object per branch instead of two, tens of thousands of times over.
 */
function isNormalBranch(b: BranchInfo): boolean {
  if (!Object.isFrozen(b) || Object.getPrototypeOf(b) !== Object.prototype || Object.is(b.branchId, -0)) return false;
  let next = 0;
  for (const key of Object.keys(b)) {
    while (next < BRANCH_FIELDS.length && BRANCH_FIELDS[next] !== key) next++;
    if (next === BRANCH_FIELDS.length || b[key as keyof BranchInfo] === undefined) return false;
    next++;
  }
  return true;
}

function copyBranch(b: BranchInfo): BranchInfo {
  if (isNormalBranch(b)) return b;
  // Made whole in one literal, so every field is in the object itself (no separate property store).
  const { branchId, gid, participant, url, xid } = b;
  const id = num(branchId);
  if (xid !== undefined) return Object.freeze(url === undefined ? { branchId: id, gid, participant, xid } : { branchId: id, gid, participant, url, xid });
  return Object.freeze(url === undefined ? { branchId: id, gid, participant } : { branchId: id, gid, participant, url });
}

function copyReason(r: AbortReason): AbortReason {
  const c: AbortReason = { cause: r.cause, message: r.message };
  if (r.branchId !== undefined) c.branchId = num(r.branchId);
  if (r.participant !== undefined) c.participant = r.participant;
  if (r.sqlState !== undefined) c.sqlState = r.sqlState;
  return Object.freeze(c);
}

function freezeDeep<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) freezeDeep(v);
  }
  return value;
}

/**
 * A frozen copy of a valid record holding exactly the fields the interface
 * defines, without `undefined` ones: what gets serialized, and so exactly what
 * a reopen reads back. The log keeps the copy, never the caller's object, so a
 * caller changing its object afterwards cannot make memory disagree with disk;
 * a branch already frozen in exactly that shape is kept as it is (it cannot
 * change), which is how the engine's running transactions share theirs.
 * `type` is passed separately so decide() need not build an intermediate object.
 */
export function normalizeRecord(r: LogRecord, type: LogRecord['type'] = r.type): LogRecord {
  switch (type) {
    case 'begin': {
      const b = r as Extract<LogRecord, { type: 'begin' }>;
      const c: LogRecord = { type, txId: b.txId, at: num(b.at), expiresAt: num(b.expiresAt) };
      // Arbitrary JSON: the round trip gives exactly the disk image.
      if (b.metadata !== undefined) c.metadata = freezeDeep(JSON.parse(JSON.stringify(b.metadata)) as Record<string, unknown>);
      if (b.owner !== undefined) c.owner = b.owner;
      return Object.freeze(c);
    }
    case 'enlist': {
      const e = r as Extract<LogRecord, { type: 'enlist' }>;
      return Object.freeze({ type, txId: e.txId, at: num(e.at), branch: copyBranch(e.branch) });
    }
    case 'decision': {
      const d = r as Extract<LogRecord, { type: 'decision' }>;
      const c: LogRecord = { type, txId: d.txId, at: num(d.at), outcome: d.outcome, source: d.source, branches: Object.freeze(d.branches.map(copyBranch)) as BranchInfo[] };
      if (d.reason !== undefined) c.reason = copyReason(d.reason);
      return Object.freeze(c);
    }
    case 'complete': {
      const c = r as Extract<LogRecord, { type: 'complete' }>;
      const base = c.outcome === undefined ? { type, txId: c.txId, at: num(c.at) } : { type, txId: c.txId, at: num(c.at), outcome: c.outcome };
      return Object.freeze(c.by === undefined ? base : { ...base, by: c.by });
    }
    case 'hazard': {
      const h = r as Extract<LogRecord, { type: 'hazard' }>;
      return Object.freeze({ type, txId: h.txId, at: num(h.at), branchId: num(h.branchId), gid: h.gid, participant: h.participant, detail: h.detail });
    }
    case 'action': {
      const a = r as Extract<LogRecord, { type: 'action' }>;
      return Object.freeze(a.note === undefined ? { type, txId: a.txId, at: num(a.at), by: a.by, action: a.action } : { type, txId: a.txId, at: num(a.at), by: a.by, action: a.action, note: a.note });
    }
  }
}

const q = JSON.stringify;

function branchJson(b: BranchInfo): string {
  return `{"branchId":${b.branchId},"gid":${q(b.gid)},"participant":${q(b.participant)}${b.url === undefined ? '' : `,"url":${q(b.url)}`}${b.xid === undefined ? '' : `,"xid":${q(b.xid)}`}}`;
}

/**
 * `JSON.stringify(record)` for a record from normalizeRecord, byte for byte,
 * built by hand: each field's order and type is known, so only strings need
 * escaping. About a third cheaper than the generic walk, and serialization is
 * the largest single cost of a decision. Numbers are finite (validated), and
 * `String(n)` is what JSON.stringify writes for a finite number.
 */
export function recordJson(r: LogRecord): string {
  const head = `{"type":"${r.type}","txId":${q(r.txId)},"at":${r.at}`;
  switch (r.type) {
    case 'begin':
      return `${head},"expiresAt":${r.expiresAt}${r.metadata === undefined ? '' : `,"metadata":${q(r.metadata)}`}${r.owner === undefined ? '' : `,"owner":${r.owner}`}}`;
    case 'enlist':
      return `${head},"branch":${branchJson(r.branch)}}`;
    case 'decision': {
      let branches = '';
      for (let i = 0; i < r.branches.length; i++) branches += (i === 0 ? '' : ',') + branchJson(r.branches[i]);
      return `${head},"outcome":${q(r.outcome)},"source":${q(r.source)},"branches":[${branches}]${r.reason === undefined ? '' : `,"reason":${q(r.reason)}`}}`;
    }
    case 'complete':
      return `${head}${r.outcome === undefined ? '' : `,"outcome":${q(r.outcome)}`}${r.by === undefined ? '' : `,"by":${q(r.by)}`}}`;
    case 'hazard':
      return `${head},"branchId":${r.branchId},"gid":${q(r.gid)},"participant":${q(r.participant)},"detail":${q(r.detail)}}`;
    case 'action':
      return `${head},"by":${q(r.by)},"action":${q(r.action)}${r.note === undefined ? '' : `,"note":${q(r.note)}`}}`;
  }
}
