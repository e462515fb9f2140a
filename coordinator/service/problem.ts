import { httpStatusOf } from '../../participant-sdk/src';
import type { AbortReason, ErrorCode, TwopcError } from '../engine/ports/protocol';
import type { Answer } from './answer';

/** Codes of problems the HTTP layer itself raises (the engine's are `ErrorCode`s). */
export const HTTP_PROBLEM_CODES = [
  'route-not-found',
  'method-not-allowed',
  'malformed-json',
  'unsupported-media-type',
  'idempotency-key-reused',
  'not-ready',
  'bad-request',
  'not-supported',
  'internal-error',
] as const;
export type HttpProblemCode = (typeof HTTP_PROBLEM_CODES)[number];
export type ProblemCode = ErrorCode | HttpProblemCode;

/** RFC 9457 problem details with twopc's stable `code` (and, for some codes, extension members). */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail: string;
  field?: string;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

// Titles for people; a code added to ErrorCode later falls back to the code itself.
const TITLES: Partial<Record<ProblemCode, string>> = {
  'invalid-input': 'Invalid input',
  'invalid-config': 'Coordinator misconfigured',
  'not-found': 'No such transaction',
  'state-conflict': 'Transaction state does not allow this',
  'transaction-aborted': 'Transaction aborted',
  'outcome-unknown': 'Outcome unknown',
  'heuristic-hazard': 'Heuristic hazard',
  'participant-unavailable': 'Participant unavailable',
  'prepared-transactions-disabled': 'Prepared transactions disabled on a participant',
  'log-corrupt': 'Decision log corrupt',
  'log-locked': 'Decision log locked',
  'log-unavailable': 'Decision log unavailable',
  'shutting-down': 'Coordinator shutting down',
  unauthorized: 'Unauthorized',
  'coordinator-unavailable': 'Coordinator unavailable',
  'route-not-found': 'No such route',
  'method-not-allowed': 'Method not allowed',
  'payload-too-large': 'Request body too large',
  'malformed-json': 'Malformed JSON',
  'unsupported-media-type': 'Unsupported media type',
  'idempotency-key-reused': 'Idempotency-Key reused for a different request',
  'not-ready': 'Coordinator not ready',
  'bad-request': 'Bad request',
  'not-supported': 'Not supported by this coordinator',
  'internal-error': 'Internal error',
};

/** A problem answer. `extensions` become extra members of the body. */
export function problem(status: number, code: ProblemCode, detail: string, extensions: Record<string, unknown> = {}, headers: Record<string, string> = {}): Answer {
  const body: ProblemBody = { type: `urn:twopc:problem:${code}`, title: TITLES[code] ?? code, status, code, detail, ...extensions };
  return { status, body, headers: { 'content-type': PROBLEM_CONTENT_TYPE, ...headers } };
}

/**
 * A TwopcError as a problem. Its status comes from `httpStatusOf`, the one
 * mapping of error codes to statuses that every twopc HTTP surface shares.
 * Only documented details leave the process: the field at fault, the
 * transaction's id and state, and an abort's reason.
 */
export function problemForTwopcError(e: TwopcError): Answer {
  const extensions: Record<string, unknown> = {};
  if (typeof e.details.field === 'string') extensions.field = e.details.field;
  if (typeof e.details.txId === 'string') extensions.txId = e.details.txId;
  if (typeof e.details.state === 'string') extensions.state = e.details.state;
  if (e.code === 'transaction-aborted') {
    extensions.state = 'aborted';
    extensions.reason = e.details.reason as AbortReason;
  }
  return problem(httpStatusOf(e.code), e.code, e.message, extensions);
}
