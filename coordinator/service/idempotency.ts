import { createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { IDEMPOTENCY_HEADER } from '../../participant-sdk/src';
import type { EngineLogger } from '../engine/ports/logger';
import { Answer, problem, problemForError, sendAnswer } from './answers';

/** A key: 1-255 visible ASCII characters (a UUID is the usual choice). */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function isIdempotencyKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** SHA-256 of a request body's exact bytes (taken while it is parsed, so a body is never serialized again). */
export function bodyDigest(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex');
}

/** What was asked: method, path and query, and the body's digest. A key is bound to one fingerprint. */
export function requestFingerprint(method: string, url: string, bodyDigestHex: string | undefined): string {
  return createHash('sha256').update(`${method} ${url}\n${bodyDigestHex ?? ''}`).digest('hex');
}

export interface IdempotencyOptions {
  /** How long a key's first answer is replayed. */
  ttlMs: number;
  /** Keys remembered at most; the oldest are forgotten first. */
  maxKeys: number;
  now?: () => number;
}

export type IdempotentResult =
  | { kind: 'first'; answer: Answer }
  | { kind: 'replay'; answer: Answer }
  | { kind: 'reused' };

interface Entry {
  fingerprint: string;
  expiresAt: number;
  answer: Promise<Answer>;
}

/**
 * Idempotency-Key store (SPEC §5): the first call with a key runs; a repeat
 * with the same key and the same request gets the first answer (waiting for
 * it if the first is still running); the same key with a different request
 * is refused (`reused`). Answers of 5xx are not kept: the call did not
 * happen as far as the client can tell, so a repeat runs again.
 *
 * In memory, bounded by `maxKeys` and `ttlMs`, and lost on restart. That is
 * safe here: commit and abort are idempotent by transaction id, enlist in a
 * transaction of a dead process fails (it was presumed aborted), and a begin
 * repeated after a restart starts a new transaction while the first one,
 * whose id the client never learned, is aborted by recovery.
 */
export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly options: IdempotencyOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Runs `produce` for the first call with `key`. `produce` must not reject (it answers problems). */
  async run(key: string, fingerprint: string, produce: () => Promise<Answer>): Promise<IdempotentResult> {
    this.forgetExpired();
    const existing = this.entries.get(key);
    if (existing) {
      if (existing.fingerprint !== fingerprint) return { kind: 'reused' };
      return { kind: 'replay', answer: await existing.answer };
    }
    const entry: Entry = { fingerprint, expiresAt: this.now() + this.options.ttlMs, answer: produce() };
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxKeys) this.entries.delete(this.entries.keys().next().value!);
    const answer = await entry.answer;
    if (answer.status >= 500 && this.entries.get(key) === entry) this.entries.delete(key);
    return { kind: 'first', answer };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Entries are in insertion order and share one TTL, so the expired ones are at the front. */
  private forgetExpired(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }
}

/** A route's logic on express: reads the request, calls the engine, returns the answer (or throws a TwopcError). */
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
