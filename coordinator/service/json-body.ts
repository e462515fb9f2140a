import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { RequestHandler, Response } from 'express';
import { Answer, problem, sendAnswer } from './answers';
import { RAW_BODY_LOCAL } from './idempotency';

const JSON_TYPES = ['application/json', 'application/*+json'];

/** What reading a `/v1` request's body gave: its parsed JSON and exact bytes (both undefined when there was no body), or the problem to answer. */
export type JsonBody = { ok: true; body: unknown; raw: Buffer | undefined } | { ok: false; refused: Answer };

/**
 * The `/v1` body rules, in one place for express and for the hot path:
 * JSON (`application/json`, `application/*+json`) up to `limit` bytes,
 * parsed by body-parser (strict: an object or array), never inflated
 * (compressed bodies would make the limit apply to what we inflate: 415),
 * and a POST whose body is of any other type is refused (415).
 */
export class JsonBodyReader {
  /** body-parser's JSON parser; it only needs node's request, so the hot path runs the same one. */
  private readonly parser: RequestHandler;

  constructor(limitBytes: number) {
    this.parser = express.json({
      limit: limitBytes,
      type: JSON_TYPES,
      inflate: false,
      // The exact bytes bind an Idempotency-Key to its request (and are what a forwarded request carries).
      verify: (_req, res, buf) => {
        locals(res)[RAW_BODY_LOCAL] = buf;
      },
    });
  }

  /** As express middleware: the parsed body in `req.body`, its bytes in `res.locals.rawBody`. */
  get middleware(): RequestHandler[] {
    return [this.parser, requireJsonBody];
  }

  /**
   * On node's own request and response (`res` gets a `locals` object, as
   * express gives it). Resolves the body, or the problem answer to send; an
   * error body-parser raised is thrown as it raised it, for `problemForError`.
   */
  read(req: IncomingMessage, res: ServerResponse): Promise<JsonBody> {
    const locals: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    (res as ServerResponse & { locals?: Record<string, unknown> }).locals = locals;
    return new Promise((resolve, reject) => {
      const next = (err?: unknown): void => {
        if (err) return reject(err);
        const raw = locals[RAW_BODY_LOCAL];
        const refused = notJson(req, raw !== undefined);
        if (refused) return resolve({ ok: false, refused });
        resolve({ ok: true, body: (req as IncomingMessage & { body?: unknown }).body, raw: Buffer.isBuffer(raw) ? raw : undefined });
      };
      // The parser is typed for express, but reads only what node's request and response have.
      this.parser(req as Parameters<RequestHandler>[0], res as Response, next);
    });
  }
}

function locals(res: unknown): Record<string, unknown> {
  return (res as { locals: Record<string, unknown> }).locals;
}

/** A POST that carries a body must carry JSON (express.json left any other type unread). */
const requireJsonBody: RequestHandler = (req, res, next) => {
  if (req.method !== 'POST' || declaredEmpty(req) || req.is(JSON_TYPES) !== false) return next();
  sendAnswer(res, unsupportedType());
};

/**
 * `requireJsonBody` for the hot path, which has no `req.is`: the parser reads
 * every body whose type is JSON, so a POST whose body is there (type-is's
 * `hasBody`), was not read and is not declared empty is of another type.
 */
function notJson(req: IncomingMessage, read: boolean): Answer | undefined {
  if (req.method !== 'POST' || read || declaredEmpty(req)) return undefined;
  const hasBody = req.headers['transfer-encoding'] !== undefined || !isNaN(Number(req.headers['content-length']));
  return hasBody ? unsupportedType() : undefined;
}

function declaredEmpty(req: IncomingMessage): boolean {
  return req.headers['content-length'] === '0' && req.headers['transfer-encoding'] === undefined;
}

const unsupportedType = (): Answer => problem(415, 'unsupported-media-type', 'request bodies must be application/json');
