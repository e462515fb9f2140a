import type { Express, Request } from 'express';
import type { InstancesReport } from '../cluster/instances-report';
import type { TransactionEngine } from '../engine/transaction-engine';
import { TwopcError } from '../engine/ports/protocol';
import { verifyLog } from '../log/file/log-verify';
import { historyAnswer } from './admin-answers';
import { emptyRequestSchema, recoverRequestSchema, resolveRequestSchema, retryRequestSchema } from './admin-schemas';
import { ok } from './answer';
import { listQuerySchema } from './api-schemas';
import { methodNotAllowed } from './error-problems';
import { problem } from './problem';
import { parseWith } from './request-validation';
import type { Responder } from './responder';

export interface AdminRouteDeps {
  engine: TransactionEngine;
  respond: Responder;
  /** Directory of the file decision log, for `log/verify`; absent when the coordinator runs on another store. */
  logDir?: string;
  /** The instances sharing the decision log (one, on a file log). */
  instances(): Promise<InstancesReport>;
}

/**
 * The operator API under `/v1/admin` (what `twopc <command> --url` calls).
 * Authentication is `adminAuth`, mounted before the body is read. Every
 * handler parses, calls the engine once, and answers what the engine returned.
 */
export function adminRoutes(app: Express, { engine, respond, logDir, instances }: AdminRouteDeps): void {
  const id = (req: Request): string => String(req.params.id);

  app
    .route('/v1/admin/transactions')
    .get(respond.read(async (req) => ok(await engine.list(parseWith(listQuerySchema, { ...req.query })))))
    .all(methodNotAllowed('GET'));

  app
    .route('/v1/admin/transactions/:id')
    .get(respond.read(async (req) => {
      const status = await engine.status(id(req));
      if (!status) throw new TwopcError('not-found', `no transaction ${id(req)}`, { txId: id(req) });
      return ok(status);
    }))
    .all(methodNotAllowed('GET'));

  app
    .route('/v1/admin/transactions/:id/history')
    .get(respond.read(async (req) => ok(historyAnswer(id(req), await engine.history(id(req))))))
    .all(methodNotAllowed('GET'));

  app
    .route('/v1/admin/transactions/:id/retry')
    .post(respond.write(async (req) => {
      const { waitMs } = parseWith(retryRequestSchema, req.body ?? {});
      return ok(await engine.retry(id(req), waitMs ?? engine.config.commitWaitMs));
    }))
    .all(methodNotAllowed('POST'));

  app
    .route('/v1/admin/transactions/:id/resolve')
    .post(respond.write(async (req) => {
      // Goes through the decision register: a contradiction is a 409 `state-conflict`, never a second decision.
      const { outcome } = parseWith(resolveRequestSchema, req.body ?? {});
      return ok(await engine.resolve(id(req), outcome));
    }))
    .all(methodNotAllowed('POST'));

  app
    .route('/v1/admin/recover')
    .post(respond.write(async (req) => {
      const { waitMs } = parseWith(recoverRequestSchema, req.body ?? {});
      return ok(await engine.recover(waitMs === undefined ? {} : { waitMs }));
    }))
    .all(methodNotAllowed('POST'));

  app
    .route('/v1/admin/orphans')
    .get(respond.read(async () => ok(await engine.orphans())))
    .all(methodNotAllowed('GET'));

  app
    .route('/v1/admin/orphans/rollback')
    .post(respond.write(async (req) => {
      parseWith(emptyRequestSchema, req.body ?? {});
      return ok({ results: await engine.rollbackOrphans() });
    }))
    .all(methodNotAllowed('POST'));

  app
    .route('/v1/admin/log/compact')
    .post(respond.write(async (req) => {
      parseWith(emptyRequestSchema, req.body ?? {});
      return ok(await engine.compactLog());
    }))
    .all(methodNotAllowed('POST'));

  app
    .route('/v1/admin/instances')
    .get(respond.read(async () => ok(await instances())))
    .all(methodNotAllowed('GET'));

  app
    .route('/v1/admin/log/verify')
    .get(respond.read(async () => {
      if (engine.logKind !== 'file' || logDir === undefined) {
        return problem(501, 'not-supported', `log verify checks a file decision log; this coordinator's decision log is ${engine.logKind}: check it with that store's own tools`);
      }
      // Read-only and lock-free: the running log may show a write in flight at its very end as a torn tail.
      return ok(await verifyLog(logDir));
    }))
    .all(methodNotAllowed('GET'));
}
