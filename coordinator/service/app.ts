import express, { Express, RequestHandler, Response } from 'express';
import type { EngineLogger } from '../engine/engine-logger';
import type { TransactionEngine } from '../engine/transaction-engine';
import { TwopcError } from '../errors';
import { checkParticipantUrl } from '../participants/http/participant-url';
import { adminAuth } from './admin-auth';
import { sendAnswer } from './answer';
import { bearerAuth } from './auth';
import { errorHandler, routeNotFound } from './error-problems';
import type { TransactionForwarder } from './forwarding';
import { bodyDigest, IdempotencyStore } from './idempotency';
import type { CoordinatorMetrics } from './metrics';
import { openApiDocument } from './openapi';
import { problem } from './problem';
import { BODY_DIGEST_LOCAL, createResponder } from './responder';
import { adminRoutes } from './routes-admin';
import { opsRoutes } from './routes-ops';
import { transactionRoutes } from './routes-transactions';

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
}

const JSON_TYPES = ['application/json', 'application/*+json'];

/** The coordinator's HTTP app (SPEC §5): thin handlers over the engine. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  // Answers are per call (and POST answers are never cacheable): no ETags.
  app.set('etag', false);
  app.use(deps.metrics.httpMiddleware);
  opsRoutes(app, { engine: deps.engine, metrics: deps.metrics, openapi: openApiDocument(deps.version) });

  // Authentication before the body is read: an unauthenticated caller cannot make us parse anything.
  app.use('/v1', bearerAuth(deps.apiTokens));
  app.use('/v1/admin', adminAuth(deps.adminToken, deps.apiTokens.length === 0));
  app.use('/v1', notReadyGate(deps.engine));
  app.use(
    '/v1',
    express.json({
      limit: deps.bodyLimitBytes,
      type: JSON_TYPES,
      // Compressed bodies would make the limit apply to what we inflate; they are refused (415).
      inflate: false,
      // The digest of the exact bytes binds an Idempotency-Key to its request.
      verify: (_req, res, buf) => {
        (res as Response).locals[BODY_DIGEST_LOCAL] = bodyDigest(buf);
        (res as Response).locals[RAW_BODY_LOCAL] = buf;
      },
    }),
  );
  app.use('/v1', requireJsonBody);
  if (deps.forwarder) app.use('/v1/transactions/:id', forwardToOwner(deps.forwarder));

  const respond = createResponder({ idempotency: deps.idempotency, logger: deps.logger, bodyLimit: `${deps.bodyLimitBytes} bytes` });
  transactionRoutes(app, { engine: deps.engine, respond, participantUrl: participantUrlCheck(deps.participantUrls) });
  adminRoutes(app, { engine: deps.engine, respond, ...(deps.logDir === undefined ? {} : { logDir: deps.logDir }) });

  app.use(routeNotFound);
  app.use(errorHandler(deps.logger, `${deps.bodyLimitBytes} bytes`));
  return app;
}

/** Until recovery has decided every logged transaction (and once stopping, or once the log failed), the API answers 503. */
function notReadyGate(engine: TransactionEngine): RequestHandler {
  return (_req, res, next) => {
    if (engine.ready) return next();
    const failure = engine.logFailure;
    // The log refuses every write until a restart: say so, rather than "retry shortly".
    if (failure) return sendAnswer(res, problem(503, 'log-unavailable', `${failure.message}; restart the coordinator once the disk is healthy`));
    sendAnswer(res, problem(503, 'not-ready', 'the coordinator is recovering or stopping; retry shortly', {}, { 'retry-after': '1' }));
  };
}

const RAW_BODY_LOCAL = 'rawBody';

/** A request for a transaction that another live instance owns is answered by that instance. */
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

/** A POST that carries a body must carry JSON (express.json left any other type unread). */
const requireJsonBody: RequestHandler = (req, res, next) => {
  const empty = req.headers['content-length'] === '0' && req.headers['transfer-encoding'] === undefined;
  if (req.method !== 'POST' || empty || req.is(JSON_TYPES) !== false) return next();
  sendAnswer(res, problem(415, 'unsupported-media-type', 'request bodies must be application/json'));
};

function participantUrlCheck(policy: AppDeps['participantUrls']): (url: string) => string {
  return (url) => {
    if (!policy.enabled) {
      throw new TwopcError('invalid-input', 'url: this coordinator has no participant secret (participantSecret / TWOPC_PARTICIPANT_SECRET), so it cannot call participant services', { field: 'url' });
    }
    return checkParticipantUrl(url, policy.allowList);
  };
}
