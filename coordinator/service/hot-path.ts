import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { IDEMPOTENCY_HEADER } from '../../participant-sdk/src';
import type { EngineLogger } from '../engine/ports/logger';
import { Answer, problemForError, writeAnswer } from './answers';
import type { ForwardAnswer, TransactionForwarder } from './forwarding';
import type { Reply, Responder } from './idempotency';
import type { JsonBodyReader } from './json-body';
import type { CoordinatorMetrics } from './metrics';
import { OWNED_PATHS, type AnswerRoute, type Route, type RouteCall } from './routes';

export interface HotPathDeps {
  metrics: CoordinatorMetrics;
  logger: EngineLogger;
  /** The route table; its `hot` routes are served here. */
  routes: readonly Route[];
  respond: Responder;
  body: JsonBodyReader;
  /** The `/v1` bearer check: undefined when the caller may pass, else the 401 to send. */
  authorize(authorization: string | undefined): Answer | undefined;
  /** The `/v1` readiness gate: undefined when the engine takes work, else the 503 to send. */
  notReady(): Answer | undefined;
  forwarder?: TransactionForwarder;
  bodyLimit: string;
}

/** A hot route, compiled: the canonical spelling of its path, and whether its transaction may be another instance's. */
interface HotRoute {
  route: AnswerRoute;
  /** The path itself, for a route without `:id`. */
  exact?: string;
  /** For a route with `:id`: the path with a lower-case UUID in its place (group 1). */
  pattern?: RegExp;
  owned: boolean;
}

// Only the canonical spelling, with an id that needs no decoding; anything else (other case,
// a trailing slash, percent-encoding, another id) is express's, which answers it as it always did.
const ID = '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})';

/**
 * The calls every transaction makes (the route table's `hot` routes: begin,
 * enlist, commit, status), answered before express's router: a `/v1` request
 * otherwise walks about eight router layers, which cost more CPU than the
 * engine's work (BENCHMARKS.md, "The `http` mode"). The steps are express's,
 * in its order, with the same code: metrics, bearer auth, the readiness gate,
 * the JSON body rules (json-body.ts), the forwarding hook, then the route
 * under the Idempotency-Key rules (idempotency.ts), answered as express
 * answers.
 *
 * Returns a dispatcher that answers true when it took the request, false
 * when express must (every other route, method or spelling, and a
 * conditional GET, to which express could answer 304).
 */
export function createHotPath(deps: HotPathDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const byMethod = new Map<string, HotRoute[]>();
  for (const route of deps.routes) {
    if (!('run' in route) || !route.hot) continue;
    const compiled = compile(route);
    byMethod.set(route.method, [...(byMethod.get(route.method) ?? []), compiled]);
  }
  return (req, res) => {
    const candidates = byMethod.get(req.method ?? '');
    if (!candidates) return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    for (const hot of candidates) {
      let id = '';
      if (hot.pattern) {
        const m = hot.pattern.exec(path);
        if (!m) continue;
        id = m[1];
      } else if (path !== hot.exact) {
        continue;
      }
      if (hot.route.method === 'GET' && conditional(req)) return false;
      const query = q === -1 ? {} : { ...parseQuery(url.slice(q + 1)) };
      void serve(deps, hot, { id, query }, req, res);
      return true;
    }
    return false;
  };
}

function compile(route: AnswerRoute): HotRoute {
  // The hot path runs the `/v1` gates only: an admin route would skip the admin token.
  if (!route.path.startsWith('/v1/') || route.path.startsWith('/v1/admin')) throw new Error(`hot route ${route.path}: only /v1 routes outside /v1/admin can be hot`);
  const owned = OWNED_PATHS.some((prefix) => route.path === prefix || route.path.startsWith(`${prefix}/`));
  const segments = route.path.split('/');
  if (!segments.some((s) => s.startsWith(':'))) return { route, exact: route.path, owned };
  const source = segments.map((s) => {
    if (s === ':id') return ID;
    if (s.startsWith(':')) throw new Error(`hot route ${route.path}: the only path parameter a hot route may have is :id`);
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return { route, pattern: new RegExp(`^${source.join('/')}$`), owned };
}

function conditional(req: IncomingMessage): boolean {
  return req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined;
}

async function serve(deps: HotPathDeps, hot: HotRoute, call: Omit<RouteCall, 'body'>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const startedAt = process.hrtime.bigint();
  // The route label is set once the route's handler runs, as express's req.route is.
  let routed: string | undefined;
  const answer = (reply: Reply): void => {
    writeAnswer(res, reply.answer, reply.headers);
    deps.metrics.observeRequest(routed, req.method ?? '', reply.answer.status, startedAt);
  };
  try {
    const refused = deps.authorize(req.headers.authorization) ?? deps.notReady();
    if (refused) return answer({ answer: refused });
    const read = await deps.body.read(req, res);
    if (!read.ok) return answer({ answer: read.refused });
    if (deps.forwarder && hot.owned) {
      const relayed = await deps.forwarder.forward({ txId: call.id, method: req.method ?? '', url: req.url ?? '', headers: req.headers, ...(read.raw ? { body: read.raw } : {}) });
      if (relayed) {
        writeRelayed(res, relayed);
        deps.metrics.observeRequest(undefined, req.method ?? '', res.statusCode, startedAt);
        return;
      }
    }
    routed = hot.route.path;
    const produce = (): Promise<Answer> => hot.route.run({ ...call, body: read.body });
    if (hot.route.kind === 'read') return answer({ answer: await deps.respond.answerRead(produce) });
    const key = req.headers[IDEMPOTENCY_HEADER];
    const write = { method: req.method ?? '', url: req.url ?? '', idempotencyKey: Array.isArray(key) ? key.join(', ') : key, rawBody: read.raw };
    answer(await deps.respond.answerWrite(write, produce));
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
