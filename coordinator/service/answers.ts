import type { ServerResponse } from 'node:http';
import type { Response } from 'express';
import { httpStatusOf } from '../../participant-sdk/src';
import type { EngineLogger } from '../engine/ports/logger';
import { errorMessage, isTwopcError, TwopcError, type AbortReason, type ErrorCode } from '../engine/ports/protocol';

/**
 * What a handler answers: status, JSON body and extra headers. Handlers
 * return answers instead of writing to the response, so an Idempotency-Key
 * can store one and replay it byte for byte.
 */
export interface Answer {
  status: number;
  body: unknown;
  headers?: Readonly<Record<string, string>>;
}

export const ok = (body: unknown): Answer => ({ status: 200, body });
export const created = (body: unknown): Answer => ({ status: 201, body });

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Writes an answer as JSON (problems carry their own `content-type`). */
export function sendAnswer(res: Response, answer: Answer, extraHeaders: Record<string, string> = {}): void {
  res.status(answer.status);
  res.set({ 'content-type': JSON_CONTENT_TYPE, ...answer.headers, ...extraHeaders });
  res.send(JSON.stringify(answer.body));
}

/**
 * `sendAnswer` through node's own response API (the hot path, which skips
 * express's router and response helpers): the same status, headers and bytes
 * that express's `res.send` writes for a JSON string with ETags off
 * (`content-type` as given, which already names its charset, and
 * `content-length`).
 */
export function writeAnswer(res: ServerResponse, answer: Answer, extraHeaders?: Record<string, string>): void {
  const text = JSON.stringify(answer.body);
  const headers: Record<string, string | number> = { 'content-type': JSON_CONTENT_TYPE, ...answer.headers, ...extraHeaders };
  headers['content-length'] = Buffer.byteLength(text);
  res.writeHead(answer.status, headers);
  res.end(text);
}

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
  'forbidden',
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
  'over-capacity': 'Coordinator at capacity',
  'bad-request': 'Bad request',
  'not-supported': 'Not supported by this coordinator',
  forbidden: 'Not allowed for this role',
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

/** body-parser's error types (the `type` of the errors `express.json` raises), by what they mean to a caller. */
const BODY_ERRORS: Record<string, (e: { message: string }, limit: string) => Answer> = {
  'entity.too.large': (_e, limit) => problemForTwopcError(new TwopcError('payload-too-large', `the request body is larger than ${limit}`)),
  'entity.parse.failed': () => problem(400, 'malformed-json', 'the request body is not a JSON object or array', { field: '(body)' }),
  'encoding.unsupported': () => problem(415, 'unsupported-media-type', 'compressed request bodies are not accepted'),
  'charset.unsupported': () => problem(415, 'unsupported-media-type', 'request bodies must be UTF-8 JSON'),
  'request.aborted': () => problem(400, 'bad-request', 'the request body ended early'),
  'request.size.invalid': () => problem(400, 'bad-request', 'the request body does not match its Content-Length'),
};

/**
 * Turns anything a handler threw into a problem answer: engine errors through
 * `httpStatusOf`, body-parser and router errors (which carry a 4xx `status`)
 * as caller faults, and everything else as a logged 500 — the last resort.
 */
export function problemForError(e: unknown, logger: EngineLogger, bodyLimit: string): Answer {
  if (isTwopcError(e)) return problemForTwopcError(e);
  const err = e as { type?: unknown; status?: unknown; message?: string } | undefined;
  const known = typeof err?.type === 'string' ? BODY_ERRORS[err.type] : undefined;
  if (known) return known({ message: err?.message ?? '' }, bodyLimit);
  if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500) {
    // e.g. a path parameter that is not valid percent-encoding.
    return problem(err.status, 'bad-request', 'the request could not be read');
  }
  logger.error({ err: errorMessage(e), stack: e instanceof Error ? e.stack : undefined }, 'unexpected error while serving a request');
  return problem(500, 'internal-error', 'unexpected error; it was logged');
}
