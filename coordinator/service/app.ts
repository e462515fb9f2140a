import express, { Express } from 'express';
import type { TransactionEngine } from '../engine/transaction-engine';
import type { CoordinatorMetrics } from './metrics';

/** The coordinator's HTTP app: thin handlers over the engine. */
export function createApp(deps: { engine: TransactionEngine; metrics: CoordinatorMetrics }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Ready only once recovery has decided every transaction in the log.
  app.get('/readyz', (_req, res) => {
    res.status(deps.engine.ready ? 200 : 503).json({ ready: deps.engine.ready });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return app;
}
