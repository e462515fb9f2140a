import type { Request, RequestHandler, Response } from 'express';
import { IDEMPOTENCY_HEADER } from '../../participant-sdk/src/wire';
import type { EngineLogger } from '../engine/engine-logger';
import { Answer, sendAnswer } from './answer';
import { problemForError } from './error-problems';
import { IdempotencyStore, isIdempotencyKey, requestFingerprint } from './idempotency';
import { problem } from './problem';

/** A route's logic: reads the request, calls the engine, returns the answer (or throws a TwopcError). */
export type AnswerHandler = (req: Request) => Promise<Answer>;

/** Where `express.json` leaves the digest of the raw body (see app.ts). */
export const BODY_DIGEST_LOCAL = 'bodyDigest';

export interface Responder {
  /** A handler without side effects. */
  read(handler: AnswerHandler): RequestHandler;
  /** A mutating handler: honours `Idempotency-Key`. */
  write(handler: AnswerHandler): RequestHandler;
}

/**
 * Adapts answer handlers to express. Errors become problems here (the same
 * conversion the app's error handler uses), so an idempotent call stores its
 * problem answer like any other.
 */
export function createResponder(deps: { idempotency: IdempotencyStore; logger: EngineLogger; bodyLimit: string }): Responder {
  const run = (handler: AnswerHandler, req: Request): Promise<Answer> =>
    handler(req).catch((e: unknown) => problemForError(e, deps.logger, deps.bodyLimit));
  return {
    read: (handler) => async (req, res) => sendAnswer(res, await run(handler, req)),
    write: (handler) => async (req, res) => {
      const key = req.get(IDEMPOTENCY_HEADER);
      if (key === undefined) return sendAnswer(res, await run(handler, req));
      if (!isIdempotencyKey(key)) {
        return sendAnswer(res, problem(400, 'invalid-input', 'Idempotency-Key must be 1-255 visible ASCII characters', { field: 'Idempotency-Key' }));
      }
      const fingerprint = requestFingerprint(req.method, req.originalUrl, bodyDigestOf(res));
      const result = await deps.idempotency.run(key, fingerprint, () => run(handler, req));
      if (result.kind === 'reused') {
        return sendAnswer(res, problem(422, 'idempotency-key-reused', 'this Idempotency-Key was used with a different request (method, path or body); use a new key', { field: 'Idempotency-Key' }));
      }
      sendAnswer(res, result.answer, result.kind === 'replay' ? { 'idempotent-replayed': 'true' } : {});
    },
  };
}

function bodyDigestOf(res: Response): string | undefined {
  const digest: unknown = res.locals[BODY_DIGEST_LOCAL];
  return typeof digest === 'string' ? digest : undefined;
}
