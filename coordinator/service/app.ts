import { TRACEPARENT_HEADER, withRemoteParent } from '../../participant-sdk/src';
import type { CarriedRegistration } from '../../participant-sdk/src';
import type { Membership } from '../cluster/membership';
import { instancesReport } from '../cluster/instances-report';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import type { EngineLogger } from '../engine/ports/logger';
import type { TransactionEngine } from '../engine/transaction-engine';
import { TwopcError } from '../engine/ports/protocol';
import { checkParticipantUrl } from '../participants/http/participant-url';
import { adminAuth, operatorOf, type Operator } from './admin-auth';
import { ADMIN_TOKEN_NAME } from './api-tokens';
import { Answer, problem, problemForError, sendAnswer, writeAnswer } from './answers';
import { bearerCheck } from './auth';
import type { TransactionForwarder } from './forwarding';
import { consoleHandler } from '../console/console-route';
import { createHotPath } from './hot-path';
import { createResponder, RAW_BODY_LOCAL, type IdempotencyStore, type Responder } from './idempotency';
import { JsonBodyReader } from './json-body';
import type { CoordinatorMetrics } from './metrics';
import { openApiDocument } from './openapi';
import { OWNED_PATHS, routeTable, type Route, type RouteCall } from './routes';

export interface AppDeps {
  engine: TransactionEngine;
  metrics: CoordinatorMetrics;
  logger: EngineLogger;
  /** Bearer tokens accepted on `/v1`. Empty: no authentication (`insecure`). */
  apiTokens: readonly string[];
  idempotency: IdempotencyStore;
  bodyLimitBytes: number;
  participantUrls: {
    /** False when no participant secret is configured: calls could not be signed, so URL branches are refused. */
    enabled: boolean;
    /** URL prefixes participant services may enlist with; empty allows any http(s) URL. */
    allowList: readonly string[];
    /** Told what each enlisting participant service serves beyond the per-call protocol. */
    accepts?(url: string, accepts: readonly string[] | undefined): void;
    /** Checks a carried registration's signature with the participant secret (carried registration). */
    registrationSigned?(txId: string, registration: CarriedRegistration): boolean;
  };
  version: string;
  /** Token of the admin API (`/v1/admin`), acting as the operator `admin` (when `operators` is not given). */
  adminToken?: string;
  /** Named tokens of the admin API and the console, with their roles. Without any (nor an admin token) the admin API is refused, unless authentication is off. */
  operators?: readonly Operator[];
  /** The file decision log's directory, for `GET /v1/admin/log/verify`; absent on other stores. */
  logDir?: string;
  /** Several instances on a shared store: relays requests for transactions another instance owns. */
  forwarder?: TransactionForwarder;
  /** Several instances on a shared store: this process's membership (leases), for `/v1/admin/instances`. */
  membership?: Membership;
}

/** The coordinator's HTTP app (SPEC §5): the route table (routes.ts) behind the `/v1` gates, thin handlers over the engine. */
export function createApp(deps: AppDeps): Express {
  return createCoordinatorHttp(deps).app;
}

/** The app, and a server's request listener that answers the hot routes before express sees them. */
export interface CoordinatorHttp {
  app: Express;
  /**
   * What `twopc serve` listens with: the hot routes (hot-path.ts) on node's
   * request and response, everything else to `app`. Served by the app alone,
   * a hot route is still answered by its first layer, but only after
   * express's `app.handle` and router entry, whose share of a request is
   * measurable (BENCHMARKS.md, "Services path: Node CPU per request, fifth
   * session"): express resets the prototypes of every request and response
   * and builds a final handler before any layer runs.
   */
  listener(req: IncomingMessage, res: ServerResponse): void;
}

/** {@link createApp}, with the hot routes also offered in front of express (serve.ts). */
export function createCoordinatorHttp(deps: AppDeps): CoordinatorHttp {
  const bodyLimit = `${deps.bodyLimitBytes} bytes`;
  const authorize = bearerCheck(deps.apiTokens);
  const body = new JsonBodyReader(deps.bodyLimitBytes);
  const respond = createResponder({ idempotency: deps.idempotency, logger: deps.logger, bodyLimit });
  const routes = routeTable({
    engine: deps.engine,
    metrics: deps.metrics,
    openapi: openApiDocument(deps.version),
    participantUrl: participantUrlCheck(deps.participantUrls),
    ...(deps.participantUrls.accepts ? { participantAccepts: deps.participantUrls.accepts } : {}),
    ...(deps.participantUrls.registrationSigned ? { registrationSigned: deps.participantUrls.registrationSigned } : {}),
    instances: () => instancesReport(deps.engine.logKind, deps.membership),
    ...(deps.logDir === undefined ? {} : { logDir: deps.logDir }),
  });
  const hot = createHotPath({ ...deps, routes, respond, body, authorize, notReady: () => notReadyAnswer(deps.engine), bodyLimit });

  const app = express();
  app.disable('x-powered-by');
  // Answers are per call (and POST answers are never cacheable): no ETags.
  app.set('etag', false);
  // The hot routes are answered here, before every other layer, by the same steps as the layers below (hot-path.ts).
  // A caller's trace context (W3C traceparent) is the parent of the spans its request makes.
  // (A request the listener below offered to the hot path and it declined is offered again here: a map
  // lookup and a path match, for the routes that are not hot.)
  app.use((req, res, next) =>
    withRemoteParent(req.headers[TRACEPARENT_HEADER] as string | undefined, () => {
      if (!hot(req, res)) next();
    }, [req, res]),
  );
  app.use(deps.metrics.httpMiddleware);

  // Authentication before the body is read: an unauthenticated caller cannot make us parse anything.
  app.use('/v1', (req, res, next) => {
    // The admin API has its own tokens (operators), checked by adminAuth below.
    if (req.path === '/admin' || req.path.startsWith('/admin/')) return next();
    const refused = authorize(req.headers.authorization);
    if (refused) return sendAnswer(res, refused);
    next();
  });
  app.use('/v1/admin', adminAuth(operatorsOfApp(deps), deps.apiTokens.length === 0));
  app.use('/v1', (_req, res, next) => {
    const refused = notReadyAnswer(deps.engine);
    if (refused) return sendAnswer(res, refused);
    next();
  });
  app.use('/v1', ...body.middleware);
  if (deps.forwarder) app.use([...OWNED_PATHS], forwardToOwner(deps.forwarder));

  registerRoutes(app, routes, respond);
  app.use('/ui', consoleHandler());
  app.use(routeNotFound);
  app.use(errorHandler(deps.logger, bodyLimit));
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    let claimed: boolean;
    try {
      // The same trace context as the app's first layer gives the hot path.
      claimed = withRemoteParent(req.headers[TRACEPARENT_HEADER] as string | undefined, () => hot(req, res), [req, res]);
    } catch (e) {
      // Inside express a synchronous throw became a 500; out here it would end the process.
      if (res.headersSent) res.destroy();
      else writeAnswer(res, problemForError(e, deps.logger, bodyLimit));
      return;
    }
    if (!claimed) app(req, res);
  };
  return { app, listener };
}

/** `operators` as given (serve passes `operatorsOf`, which includes the admin token), else the admin token alone. */
function operatorsOfApp(deps: AppDeps): readonly Operator[] {
  if (deps.operators) return deps.operators;
  return deps.adminToken === undefined ? [] : [{ name: ADMIN_TOKEN_NAME, token: deps.adminToken, role: 'admin' }];
}

/** Each path once, with its methods from the table; any other method on it is a 405 naming the ones it has. */
function registerRoutes(app: Express, routes: readonly Route[], respond: Responder): void {
  for (const path of new Set(routes.map((r) => r.path))) {
    const here = routes.filter((r) => r.path === path);
    const route = app.route(path);
    for (const r of here) route[r.method === 'GET' ? 'get' : 'post']('raw' in r ? r.raw : respond[r.kind]((req) => r.run(callOf(req))));
    route.all(methodNotAllowed(here.map((r) => r.method).sort().join(', ')));
  }
}

function callOf(req: Request): RouteCall {
  const id: unknown = req.params.id;
  const operator = operatorOf(req);
  return { id: id === undefined ? '' : String(id), body: req.body, query: { ...req.query }, ...(operator === undefined ? {} : { operator }) };
}

/**
 * Until recovery has decided every logged transaction (and once stopping, or
 * once the log failed), the API answers 503: undefined when the engine is
 * ready, else the problem to send.
 */
function notReadyAnswer(engine: TransactionEngine): Answer | undefined {
  if (engine.ready) return undefined;
  const failure = engine.logFailure;
  // The log refuses every write until a restart: say so, rather than "retry shortly".
  if (failure) return problem(503, 'log-unavailable', `${failure.message}; restart the coordinator once the disk is healthy`);
  return problem(503, 'not-ready', 'the coordinator is recovering or stopping; retry shortly', {}, { 'retry-after': '1' });
}

/** A request for a transaction that another live instance owns is answered by that instance (or refused: owner-unavailable). */
function forwardToOwner(forwarder: TransactionForwarder): RequestHandler {
  return async (req, res, next) => {
    const raw: unknown = res.locals[RAW_BODY_LOCAL];
    try {
      const answer = await forwarder.forward({
        txId: String(req.params.id),
        method: req.method,
        url: req.originalUrl,
        headers: req.headers,
        ...(Buffer.isBuffer(raw) ? { body: raw } : {}),
      });
      if (!answer) return next();
      res.status(answer.status).set(answer.headers).send(answer.body);
    } catch (e) {
      next(e);
    }
  };
}

function participantUrlCheck(policy: AppDeps['participantUrls']): (url: string) => string {
  return (url) => {
    if (!policy.enabled) {
      throw new TwopcError('invalid-input', 'url: this coordinator has no participant secret (participantSecret / TWOPC_PARTICIPANT_SECRET), so it cannot call participant services', { field: 'url' });
    }
    return checkParticipantUrl(url, policy.allowList);
  };
}

/** Unknown routes: a 404 problem, so clients see the same shape everywhere. */
const routeNotFound: RequestHandler = (req, res) => {
  sendAnswer(res, problem(404, 'route-not-found', `no route ${req.method} ${req.path.slice(0, 200)}`));
};

/** A route that exists, called with a method it does not have. */
function methodNotAllowed(allow: string): RequestHandler {
  return (req, res) => sendAnswer(res, problem(405, 'method-not-allowed', `${req.method} is not allowed here; use ${allow}`, {}, { allow }));
}

/** The app's last error handler. */
function errorHandler(logger: EngineLogger, bodyLimit: string): ErrorRequestHandler {
  return (e, _req, res, next) => {
    // Too late for a problem: let express end the connection.
    if (res.headersSent) return next(e);
    sendAnswer(res, problemForError(e, logger, bodyLimit));
  };
}
