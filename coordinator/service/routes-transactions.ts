import type { Express, Request } from 'express';
import { beginRequestSchema, enlistRequestSchema } from '../../participant-sdk/src/wire';
import type { TransactionEngine } from '../engine/transaction-engine';
import { TwopcError } from '../errors';
import { abortRequestSchema, commitRequestSchema, listQuerySchema, MAX_METADATA_DEPTH } from './api-schemas';
import { Answer, created, ok } from './answer';
import { methodNotAllowed } from './error-problems';
import { assertJsonDepth, parseWith } from './request-validation';
import type { Responder } from './responder';

export interface TransactionRouteDeps {
  engine: TransactionEngine;
  respond: Responder;
  /** Checks and normalizes an enlisted participant URL; throws `invalid-input` naming `url`. */
  participantUrl(url: string): string;
}

/** SPEC §5: the `/v1/transactions` API. Each handler parses, calls the engine once, and shapes the answer. */
export function transactionRoutes(app: Express, { engine, respond, participantUrl }: TransactionRouteDeps): void {
  const id = (req: Request): string => String(req.params.id);

  app
    .route('/v1/transactions')
    .post(respond.write(async (req) => beginAnswer(await engine.begin(parseBegin(req.body)))))
    .get(respond.read(async (req) => ok(await engine.list(parseWith(listQuerySchema, { ...req.query })))))
    .all(methodNotAllowed('GET, POST'));

  app
    .route('/v1/transactions/:id')
    .get(respond.read(async (req) => ok(found(id(req), await engine.status(id(req))))))
    .all(methodNotAllowed('GET'));

  app
    .route('/v1/transactions/:id/branches')
    .post(respond.write(async (req) => {
      const { participant, url } = parseWith(enlistRequestSchema, req.body);
      const branch = await engine.enlist(id(req), participant, { url: participantUrl(url) });
      return created({ branchId: branch.branchId, gid: branch.gid, expiresAt: new Date(branch.expiresAt).toISOString() });
    }))
    .all(methodNotAllowed('POST'));

  app
    .route('/v1/transactions/:id/commit')
    .post(respond.write(async (req) => {
      parseWith(commitRequestSchema, req.body ?? {});
      const result = await engine.commit(id(req));
      // 202: the commit decision is durable, and phase 2 keeps retrying the branches that have not acknowledged.
      return { status: result.phaseTwoPending ? 202 : 200, body: { id: result.txId, state: result.state, phaseTwoPending: result.phaseTwoPending } };
    }))
    .all(methodNotAllowed('POST'));

  app
    .route('/v1/transactions/:id/abort')
    .post(respond.write(async (req) => {
      const { reason } = parseWith(abortRequestSchema, req.body ?? {});
      const result = await engine.abort(id(req), reason === undefined ? {} : { cause: 'application', message: reason });
      return ok({ id: result.txId, state: result.state });
    }))
    .all(methodNotAllowed('POST'));
}

function parseBegin(body: unknown): { timeoutMs?: number; metadata?: Record<string, unknown> } {
  const request = parseWith(beginRequestSchema, body ?? {});
  if (request.metadata !== undefined) assertJsonDepth(request.metadata, MAX_METADATA_DEPTH, 'metadata');
  return request;
}

function beginAnswer(tx: { id: string; state: string; expiresAt: string }): Answer {
  return created({ id: tx.id, state: tx.state, expiresAt: tx.expiresAt });
}

function found<T>(txId: string, value: T | undefined): T {
  if (value === undefined) throw new TwopcError('not-found', `no transaction ${txId}`, { txId });
  return value;
}
