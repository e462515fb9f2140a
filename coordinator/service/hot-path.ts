import type { IncomingMessage, ServerResponse } from 'node:http';
import { IDEMPOTENCY_HEADER } from '../../participant-sdk/src';
import type { EngineLogger } from '../engine/ports/logger';
import type { TransactionEngine } from '../engine/transaction-engine';
import { Answer, writeAnswer } from './answer';
import { problemForError } from './error-problems';
import type { ForwardAnswer, TransactionForwarder } from './forwarding';
import type { JsonBodyReader } from './json-body';
import type { CoordinatorMetrics } from './metrics';
import { notReadyAnswer } from './readiness';
import type { Reply, Responder } from './responder';
import type { TransactionHandlers } from './routes-transactions';

export interface HotPathDeps {
  engine: TransactionEngine;
  metrics: CoordinatorMetrics;
  logger: EngineLogger;
  handlers: TransactionHandlers;
  respond: Responder;
  body: JsonBodyReader;
  /** The `/v1` bearer check: undefined when the caller may pass, else the 401 to send. */
  authorize(authorization: string | undefined): Answer | undefined;
  forwarder?: TransactionForwarder;
  bodyLimit: string;
}

/** A hot route: its express pattern (the metrics label), and how it answers. */
interface HotRoute {
  pattern: string;
  write: boolean;
  run(handlers: TransactionHandlers, id: string, body: unknown): Promise<Answer>;
}

const BEGIN: HotRoute = { pattern: '/v1/transactions', write: true, run: (h, _id, body) => h.begin(body) };
const STATUS: HotRoute = { pattern: '/v1/transactions/:id', write: false, run: (h, id) => h.status(id) };
const ENLIST: HotRoute = { pattern: '/v1/transactions/:id/branches', write: true, run: (h, id, body) => h.enlist(id, body) };
const COMMIT: HotRoute = { pattern: '/v1/transactions/:id/commit', write: true, run: (h, id, body) => h.commit(id, body) };

// Only the canonical spelling, with an id that needs no decoding; anything else (other case,
// a trailing slash, percent-encoding, another id) is express's, which answers it as it always did.
const BY_ID = /^\/v1\/transactions\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\/branches|\/commit)?$/;

/**
 * The four calls every transaction makes (begin, enlist, commit, status),
 * served on node's request and response without express: a `/v1` request
 * otherwise walks about eight router layers and express's request set-up,
 * which cost more CPU than the engine's work (BENCHMARKS.md, "The `http`
 * mode"). The steps are express's, in its order, with the same code:
 * metrics, bearer auth, the readiness gate, the JSON body rules
 * (json-body.ts), the forwarding hook, then the route's handler under the
 * Idempotency-Key rules (responder.ts), answered as express answers.
 *
 * Returns a dispatcher that answers true when it took the request, false
 * when express must (every other route, method or spelling, and a
 * conditional GET, to which express could answer 304).
 */
export function createHotPath(deps: HotPathDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let route: HotRoute | undefined;
    let id = '';
    if (path === '/v1/transactions') {
      if (req.method === 'POST') route = BEGIN;
    } else {
      const m = BY_ID.exec(path);
      if (m) {
        id = m[1];
        if (m[2] === undefined) route = req.method === 'GET' && !conditional(req) ? STATUS : undefined;
        else if (req.method === 'POST') route = m[2] === '/branches' ? ENLIST : COMMIT;
      }
    }
    if (!route) return false;
    void serve(deps, route, id, req, res);
    return true;
  };
}

function conditional(req: IncomingMessage): boolean {
  return req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined;
}

async function serve(deps: HotPathDeps, route: HotRoute, id: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const startedAt = process.hrtime.bigint();
  // The route label is set once the route's handler runs, as express's req.route is.
  let routed: string | undefined;
  const answer = (reply: Reply): void => {
    writeAnswer(res, reply.answer, reply.headers);
    deps.metrics.observeRequest(routed, req.method ?? '', reply.answer.status, startedAt);
  };
  try {
    const refused = deps.authorize(req.headers.authorization) ?? notReadyAnswer(deps.engine);
    if (refused) return answer({ answer: refused });
    const read = await deps.body.read(req, res);
    if (!read.ok) return answer({ answer: read.refused });
    if (deps.forwarder && route !== BEGIN) {
      const relayed = await deps.forwarder.forward({ txId: id, method: req.method ?? '', url: req.url ?? '', headers: req.headers, ...(read.raw ? { body: read.raw } : {}) });
      if (relayed) {
        writeRelayed(res, relayed);
        deps.metrics.observeRequest(undefined, req.method ?? '', res.statusCode, startedAt);
        return;
      }
    }
    routed = route.pattern;
    const produce = (): Promise<Answer> => route.run(deps.handlers, id, read.body);
    if (!route.write) return answer({ answer: await deps.respond.answerRead(produce) });
    const key = req.headers[IDEMPOTENCY_HEADER];
    const call = { method: req.method ?? '', url: req.url ?? '', idempotencyKey: Array.isArray(key) ? key.join(', ') : key, rawBody: read.raw };
    answer(await deps.respond.answerWrite(call, produce));
  } catch (e) {
    // What express's last error handler does: a problem, unless it is too late for one.
    routed = undefined;
    if (res.headersSent) {
      req.socket.destroy();
      return;
    }
    answer({ answer: problemForError(e, deps.logger, deps.bodyLimit) });
  }
}

/**
 * The owner's answer, as express's `res.send(buffer)` writes it: its status
 * and headers, `content-length` unless it is chunked, and no body for a 204
 * or 304. (express would also add a charset to a `content-type` without one;
 * a coordinator's answers always name theirs.)
 */
function writeRelayed(res: ServerResponse, relayed: ForwardAnswer): void {
  const headers: Record<string, string | number> = { ...relayed.headers };
  const names = Object.keys(headers).map((h) => h.toLowerCase());
  if (!names.includes('content-type')) headers['content-type'] = 'application/octet-stream';
  let body: Buffer | string = relayed.body;
  if (relayed.status === 204 || relayed.status === 304) {
    for (const name of Object.keys(headers)) if (['content-type', 'content-length', 'transfer-encoding'].includes(name.toLowerCase())) delete headers[name];
    body = '';
  } else if (!names.includes('transfer-encoding')) {
    for (const name of Object.keys(headers)) if (name.toLowerCase() === 'content-length') delete headers[name];
    headers['content-length'] = relayed.body.length;
  }
  res.writeHead(relayed.status, headers);
  res.end(body);
}
