import type { IncomingMessage, ServerResponse } from 'node:http';
import { TwopcError } from './errors';
import { PROBLEM_CONTENT_TYPE, problemOf } from './problem';
import { CallAnswer, ProtocolDeps, protocolCalls } from './protocol-calls';
import { verifySignature } from './signature';
import { branchSpan, traceparentOfQuery } from './traced-call';
import { SIGNATURE_HEADER, TRANSACTION_HEADER } from './wire';

/**
 * A `node:http` request handler, in the shape express, connect and fastify's
 * middleware take: it answers the coordinator's calls and passes anything
 * else to `next` (or answers 404 without one).
 */
export type ProtocolHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

type Route = ({ run: (deps: ProtocolDeps, body: string, query: string) => Promise<CallAnswer>; query: string } | { gid: string; observe: boolean }) & { step: string };

const GID_IN_BODY = /"gid"\s*:\s*"([^"]{1,200})"/;

const POSTS: Record<string, (deps: ProtocolDeps, body: string, query: string) => Promise<CallAnswer>> = {
  '/prepare': protocolCalls.prepare,
  '/commit': protocolCalls.commit,
  '/rollback': protocolCalls.rollback,
  '/batch': protocolCalls.batch,
};

/**
 * The coordinator's calls (docs/protocol.md) as one plain handler, with no
 * router in front: `POST <base>/prepare|commit|rollback|batch` and `GET
 * <base>/branches/:gid`. Each reads the raw body (up to maxBodyBytes),
 * checks the signature over it and the path as received (express's
 * `originalUrl` when mounted below a prefix), and only then parses and runs
 * the call; every refusal is a problem answer.
 *
 * @example
 * http.createServer((req, res) => handler(req, res, () => app(req, res))); // the SDK's calls first, the app's own after
 */
export function createProtocolHandler(deps: ProtocolDeps, basePath = ''): ProtocolHandler {
  return (req, res, next) => {
    const url = req.url ?? '';
    const route = matchRoute(req.method, url, basePath);
    if (!route) {
      if (next) return next();
      return sendProblem(res, new TwopcError('not-found', `no participant route ${req.method} ${url.slice(0, 200)}`));
    }
    readBody(req, deps.maxBodyBytes).then(
      (body) => {
        // The path as the coordinator addressed it: the mount point included, with the query.
        const signedPath = (req as { originalUrl?: string }).originalUrl ?? url;
        const check = verifySignature(deps.secret, header(req, SIGNATURE_HEADER), req.method ?? '', signedPath, body);
        if (!check.ok) return sendProblem(res, new TwopcError('unauthorized', `${SIGNATURE_HEADER} ${check.reason}: calls must be signed by the coordinator`, { field: SIGNATURE_HEADER }));
        if (!deps.isOpen()) return sendProblem(res, new TwopcError('shutting-down', `participant "${deps.name}" is not serving (closed or not started)`));
        const run = () => ('run' in route ? route.run(deps, body, route.query) : protocolCalls.status(deps, route.gid, route.observe));
        // A batch's calls are each a span of their own (protocol-calls.ts); any other call is one here.
        const answer = route.step === 'batch' ? run() : branchSpan(deps.name, route.step, { txId: header(req, TRANSACTION_HEADER), gid: 'gid' in route ? route.gid : GID_IN_BODY.exec(body)?.[1] }, traceparentOfQuery(url), run);
        answer.then(([status, json]) => sendJson(res, status, json), (e: unknown) => sendProblem(res, e));
      },
      (e: unknown) => sendProblem(res, e),
    );
  };
}

function matchRoute(method: string | undefined, url: string, basePath: string): Route | undefined {
  if (!url.startsWith(basePath)) return undefined;
  const q = url.indexOf('?');
  const path = url.slice(basePath.length, q === -1 ? undefined : q);
  if (method === 'POST') {
    return Object.hasOwn(POSTS, path) ? { run: POSTS[path], query: q === -1 ? '' : url.slice(q + 1), step: path.slice(1) } : undefined;
  }
  if (method !== 'GET' || !path.startsWith('/branches/') || path.indexOf('/', 10) !== -1) return undefined;
  let gid: string;
  try {
    gid = decodeURIComponent(path.slice(10));
  } catch {
    gid = path.slice(10);
  }
  const observe = q !== -1 && new URLSearchParams(url.slice(q + 1)).get('observe') === '1';
  return { gid, observe, step: 'status' };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The raw body as text; a body over `max` bytes is refused (413) without reading the rest. */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  // Already read by a body parser in front of us (express.raw/text): take what it kept.
  const parsed = (req as { body?: unknown }).body;
  if (Buffer.isBuffer(parsed)) return Promise.resolve(parsed.toString('utf8'));
  if (typeof parsed === 'string') return Promise.resolve(parsed);
  return new Promise((resolve, reject) => {
    const tooLarge = () => new TwopcError('payload-too-large', 'the request body is over the limit', { field: '(body)' });
    if (Number(req.headers['content-length'] ?? 0) > max) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', (e) => reject(new TwopcError('invalid-input', `the request body could not be read: ${e.message}`, { field: '(body)' })));
  });
}

/**
 * Writes a JSON answer on node's response directly: nothing here reads
 * express's settings, computes an ETag or re-parses the content type.
 */
function sendJson(res: ServerResponse, status: number, body: object, contentType = 'application/json; charset=utf-8'): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendProblem(res: ServerResponse, error: unknown): void {
  const problem = problemOf(error);
  sendJson(res, problem.status, problem, `${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
}
