import type { Request, RequestHandler, Response } from 'express';
import { IDEMPOTENCY_HEADER } from '../../participant-sdk/src';
import type { EngineLogger } from '../engine/ports/logger';
import { Answer, sendAnswer } from './answer';
import { problemForError } from './error-problems';
import { bodyDigest, IdempotencyStore, isIdempotencyKey, requestFingerprint } from './idempotency';
import { problem } from './problem';

/** A route's logic: reads the request, calls the engine, returns the answer (or throws a TwopcError). */
export type AnswerHandler = (req: Request) => Promise<Answer>;

/** Where the JSON body reader leaves the exact body bytes (see json-body.ts); the Idempotency-Key digest is taken of them. */
export const RAW_BODY_LOCAL = 'rawBody';

/** What the Idempotency-Key rules need to know of a mutating request, whatever server received it. */
export interface WriteCall {
  method: string;
  /** Path and query, as received. */
  url: string;
  /** The `Idempotency-Key` header, if any. */
  idempotencyKey: string | undefined;
  /** The exact body bytes, when a body was read. */
  rawBody: Buffer | undefined;
}

/** An answer and the headers to send with it. */
export interface Reply {
  answer: Answer;
  headers?: Record<string, string>;
}

export interface Responder {
  /** A handler without side effects. */
  read(handler: AnswerHandler): RequestHandler;
  /** A mutating handler: honours `Idempotency-Key`. */
  write(handler: AnswerHandler): RequestHandler;
  /** The core of `read`, free of express: runs `produce`, turning what it throws into a problem. */
  answerRead(produce: () => Promise<Answer>): Promise<Answer>;
  /** The core of `write`, free of express: `answerRead` under the Idempotency-Key rules. */
  answerWrite(call: WriteCall, produce: () => Promise<Answer>): Promise<Reply>;
}

/**
 * Adapts answer handlers to express (and, through `answerRead` /
 * `answerWrite`, to the hot path). Errors become problems here (the same
 * conversion the app's error handler uses), so an idempotent call stores its
 * problem answer like any other.
 */
export function createResponder(deps: { idempotency: IdempotencyStore; logger: EngineLogger; bodyLimit: string }): Responder {
  const answerRead = (produce: () => Promise<Answer>): Promise<Answer> => produce().catch((e: unknown) => problemForError(e, deps.logger, deps.bodyLimit));
  const answerWrite = async (call: WriteCall, produce: () => Promise<Answer>): Promise<Reply> => {
    const key = call.idempotencyKey;
    if (key === undefined) return { answer: await answerRead(produce) };
    if (!isIdempotencyKey(key)) {
      return { answer: problem(400, 'invalid-input', 'Idempotency-Key must be 1-255 visible ASCII characters', { field: 'Idempotency-Key' }) };
    }
    // The body's digest is taken only here: requests without a key never pay for it.
    const fingerprint = requestFingerprint(call.method, call.url, call.rawBody === undefined ? undefined : bodyDigest(call.rawBody));
    const result = await deps.idempotency.run(key, fingerprint, () => answerRead(produce));
    if (result.kind === 'reused') {
      return { answer: problem(422, 'idempotency-key-reused', 'this Idempotency-Key was used with a different request (method, path or body); use a new key', { field: 'Idempotency-Key' }) };
    }
    return { answer: result.answer, ...(result.kind === 'replay' ? { headers: { 'idempotent-replayed': 'true' } } : {}) };
  };
  return {
    answerRead,
    answerWrite,
    read: (handler) => async (req, res) => sendAnswer(res, await answerRead(() => handler(req))),
    write: (handler) => async (req, res) => {
      const reply = await answerWrite(
        { method: req.method, url: req.originalUrl, idempotencyKey: req.get(IDEMPOTENCY_HEADER), rawBody: rawBodyOf(res) },
        () => handler(req),
      );
      sendAnswer(res, reply.answer, reply.headers);
    },
  };
}

function rawBodyOf(res: Response): Buffer | undefined {
  const raw: unknown = res.locals[RAW_BODY_LOCAL];
  return Buffer.isBuffer(raw) ? raw : undefined;
}
