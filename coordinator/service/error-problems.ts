import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { EngineLogger } from '../engine/ports/logger';
import { errorMessage, isTwopcError, TwopcError } from '../engine/ports/protocol';
import { Answer, sendAnswer } from './answer';
import { problem, problemForTwopcError } from './problem';

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
 * `httpStatusFor`, body-parser and router errors (which carry a 4xx `status`)
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

/** Unknown routes: a 404 problem, so clients see the same shape everywhere. */
export const routeNotFound: RequestHandler = (req, res) => {
  sendAnswer(res, problem(404, 'route-not-found', `no route ${req.method} ${req.path.slice(0, 200)}`));
};

/** A route that exists, called with a method it does not have. */
export function methodNotAllowed(allow: string): RequestHandler {
  return (req, res) => sendAnswer(res, problem(405, 'method-not-allowed', `${req.method} is not allowed here; use ${allow}`, {}, { allow }));
}

/** The app's last error handler. */
export function errorHandler(logger: EngineLogger, bodyLimit: string): ErrorRequestHandler {
  return (e, _req, res, next) => {
    // Too late for a problem: let express end the connection.
    if (res.headersSent) return next(e);
    sendAnswer(res, problemForError(e, logger, bodyLimit));
  };
}
