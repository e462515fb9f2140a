import type { Membership } from '../cluster/membership';
import { instancesReport } from '../cluster/instances-report';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { Express, RequestHandler } from 'express';
import type { EngineLogger } from '../engine/ports/logger';
import type { TransactionEngine } from '../engine/transaction-engine';
import { TwopcError } from '../engine/ports/protocol';
import { checkParticipantUrl } from '../participants/http/participant-url';
import { adminAuth } from './admin-auth';
import { sendAnswer } from './answer';
import { bearerCheck } from './auth';
import { errorHandler, routeNotFound } from './error-problems';
import type { TransactionForwarder } from './forwarding';
import { createHotPath } from './hot-path';
import type { IdempotencyStore } from './idempotency';
import { JsonBodyReader } from './json-body';
import type { CoordinatorMetrics } from './metrics';
import { openApiDocument } from './openapi';
import { notReadyAnswer } from './readiness';
import { createResponder, RAW_BODY_LOCAL } from './responder';
import { adminRoutes } from './routes-admin';
import { opsRoutes } from './routes-ops';
import { transactionHandlers, transactionRoutes } from './routes-transactions';

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
  };
  version: string;
  /** Token of the admin API (`/v1/admin`). Without one the admin API is refused, unless authentication is off. */
  adminToken?: string;
  /** The file decision log's directory, for `GET /v1/admin/log/verify`; absent on other stores. */
  logDir?: string;
  /** Several instances on a shared store: relays requests for transactions another instance owns. */
  forwarder?: TransactionForwarder;
  /** Several instances on a shared store: this process's membership (leases), for `/v1/admin/instances`. */
  membership?: Membership;
}

/** The coordinator's HTTP app (SPEC §5): thin handlers over the engine. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  // Answers are per call (and POST answers are never cacheable): no ETags.
  app.set('etag', false);
  app.use(deps.metrics.httpMiddleware);
  opsRoutes(app, { engine: deps.engine, metrics: deps.metrics, openapi: openApiDocument(deps.version) });

  // Authentication before the body is read: an unauthenticated caller cannot make us parse anything.
  const authorize = bearerCheck(deps.apiTokens);
  app.use('/v1', (req, res, next) => {
    const refused = authorize(req.headers.authorization);
    if (refused) return sendAnswer(res, refused);
    next();
  });
  app.use('/v1/admin', adminAuth(deps.adminToken, deps.apiTokens.length === 0));
  app.use('/v1', notReadyGate(deps.engine));
  const body = new JsonBodyReader(deps.bodyLimitBytes);
  app.use('/v1', ...body.middleware);
  // Admin calls on one transaction too (show, history, retry, resolve): acted on here, an operator's
  // resolve could record a decision under a transaction its live owner is running.
  if (deps.forwarder) app.use(['/v1/transactions/:id', '/v1/admin/transactions/:id'], forwardToOwner(deps.forwarder));

  const bodyLimit = `${deps.bodyLimitBytes} bytes`;
  const respond = createResponder({ idempotency: deps.idempotency, logger: deps.logger, bodyLimit });
  const routeDeps = { engine: deps.engine, respond, participantUrl: participantUrlCheck(deps.participantUrls) };
  const handlers = transactionHandlers(routeDeps);
  transactionRoutes(app, routeDeps, handlers);
  adminRoutes(app, {
    engine: deps.engine,
    respond,
    instances: () => instancesReport(deps.engine.logKind, deps.membership),
    ...(deps.logDir === undefined ? {} : { logDir: deps.logDir }),
  });

  app.use(routeNotFound);
  app.use(errorHandler(deps.logger, bodyLimit));

  // The hot routes skip express altogether (hot-path.ts), with the same steps as above. Every way
  // of serving the app (app.listen, http.createServer(app), a test's server) calls app.handle.
  const hot = createHotPath({ ...deps, handlers, respond, body, authorize, bodyLimit });
  const expressApp = app as unknown as { handle(req: IncomingMessage, res: ServerResponse, next?: unknown): void };
  const handle = expressApp.handle.bind(app);
  expressApp.handle = (req, res, next) => {
    if (next === undefined && hot(req, res)) return;
    handle(req, res, next);
  };
  return app;
}

/** Until recovery has decided every logged transaction (and once stopping, or once the log failed), the API answers 503. */
function notReadyGate(engine: TransactionEngine): RequestHandler {
  return (_req, res, next) => {
    const refused = notReadyAnswer(engine);
    if (refused) return sendAnswer(res, refused);
    next();
  };
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
