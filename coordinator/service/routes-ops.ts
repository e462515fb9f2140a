import type { Express } from 'express';
import type { TransactionEngine } from '../engine/transaction-engine';
import { sendAnswer } from './answer';
import { methodNotAllowed } from './error-problems';
import type { CoordinatorMetrics } from './metrics';

/**
 * Operations endpoints. They carry no transaction data and are left without
 * authentication so probes and scrapers need no token; bind the listener to
 * a private interface (or put a proxy in front) if `/metrics` must stay private.
 */
export function opsRoutes(app: Express, deps: { engine: TransactionEngine; metrics: CoordinatorMetrics; openapi: object }): void {
  app
    .route('/healthz')
    .get((_req, res) => sendAnswer(res, { status: 200, body: { status: 'ok' } }))
    .all(methodNotAllowed('GET'));
  // Ready only once recovery has decided every transaction in the log (and not while stopping).
  app
    .route('/readyz')
    .get((_req, res) => sendAnswer(res, { status: deps.engine.ready ? 200 : 503, body: { ready: deps.engine.ready } }))
    .all(methodNotAllowed('GET'));
  app
    .route('/metrics')
    .get(async (_req, res) => {
      res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    })
    .all(methodNotAllowed('GET'));
  app
    .route('/openapi.json')
    .get((_req, res) => sendAnswer(res, { status: 200, body: deps.openapi }))
    .all(methodNotAllowed('GET'));
}
