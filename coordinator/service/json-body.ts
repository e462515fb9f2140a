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

  constructor(private readonly limitBytes: number) {
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
   * On node's own request and response. Resolves the body, or the problem
   * answer to send; an error body-parser raised is thrown as it raised it,
   * for `problemForError`. The plain requests every client sends (no body,
   * or `application/json` of a declared length within the limit, not
   * compressed) are read here by the same rules without body-parser's
   * layers (type and charset parsing, iconv, an async resource and five
   * listeners per request: BENCHMARKS.md, "Services path: Node CPU per
   * request, fifth session"); any other request goes to body-parser, with
   * `res.locals` as express gives it.
   */
  read(req: IncomingMessage, res: ServerResponse): Promise<JsonBody> {
    const declared = plainJsonLength(req, this.limitBytes);
    if (declared === NO_BODY) return Promise.resolve({ ok: true, body: undefined, raw: undefined });
    if (declared !== OTHER) return readPlainJson(req, declared);
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

/** What `plainJsonLength` says of a request that has no body at all. */
const NO_BODY = -1;
/** What `plainJsonLength` says of a request that body-parser must read. */
const OTHER = -2;
/** The charset spellings read here besides none (UTF-8 either way); any other goes to body-parser. */
const PLAIN_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);

/**
 * The body's declared length when it is plain JSON within `limit`: one of
 * PLAIN_TYPES, no content coding, a Content-Length of digits and no
 * Transfer-Encoding; NO_BODY when there is neither Content-Length nor
 * Transfer-Encoding (type-is's `hasBody` false: body-parser reads nothing);
 * OTHER for anything else.
 */
function plainJsonLength(req: IncomingMessage, limit: number): number {
  const { headers } = req;
  const length = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined) return OTHER;
  if (length === undefined) return NO_BODY;
  const type = headers['content-type'];
  if (type === undefined || !PLAIN_TYPES.has(type) || headers['content-encoding'] !== undefined || !/^[0-9]{1,10}$/.test(length)) return OTHER;
  const declared = Number(length);
  // An empty body (body-parser parses it as {}) and one over the limit (413) keep body-parser's handling.
  return declared > 0 && declared <= limit ? declared : OTHER;
}

/** An error with the `type` and status body-parser gives it (what problemForError reads). */
function bodyError(type: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), { type, status, statusCode: status, expose: true });
}

const FIRST_NON_WHITESPACE = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d]|$)/;

/**
 * Reads and parses a plain JSON body of `declared` bytes as body-parser's
 * strict JSON parser does (a leading BOM dropped, as its UTF-8 decoding
 * does; an object or array only), failing with the same error types: a
 * request aborted or ending short of its length, a body that does not parse.
 */
function readPlainJson(req: IncomingMessage, declared: number): Promise<JsonBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (error: Error | undefined, answer?: JsonBody): void => {
      if (settled) return;
      settled = true;
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onError);
      req.removeListener('aborted', onAborted);
      req.removeListener('close', onAborted);
      if (error) {
        // What body-parser does with a failed read: the rest is drained, not left in the socket.
        req.resume();
        reject(error);
      } else resolve(answer!);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      chunks.push(chunk);
    };
    const onAborted = (): void => finish(bodyError('request.aborted', 'request aborted'));
    const onError = (e: Error): void => finish(Object.assign(e, { status: 400, statusCode: 400 }));
    const onEnd = (): void => {
      if (received !== declared) return finish(bodyError('request.size.invalid', 'request size did not match content length'));
      const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received);
      let text = raw.toString('utf8');
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      const first = text[0] === '{' || text[0] === '[' ? text[0] : FIRST_NON_WHITESPACE.exec(text)?.[1];
      if (text.length > 0 && first !== '{' && first !== '[') return finish(bodyError('entity.parse.failed', 'the body is not a JSON object or array'));
      let body: unknown;
      try {
        body = text.length === 0 ? {} : JSON.parse(text);
      } catch (e) {
        return finish(bodyError('entity.parse.failed', e instanceof Error ? e.message : String(e)));
      }
      finish(undefined, { ok: true, body, raw });
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
    // Closed before its end without 'aborted' (body-parser would wait forever): nobody is left to answer.
    req.on('close', onAborted);
  });
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
