import type { Express, Request } from 'express';
import { beginRequestSchema, enlistRequestSchema } from '../../participant-sdk/src';
import type { TransactionEngine } from '../engine/transaction-engine';
import { TwopcError } from '../engine/ports/protocol';
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

/**
 * The handlers of the hot `/v1/transactions` routes, free of any HTTP
 * framework: express (below) and the hot path (hot-path.ts) call the same
 * ones. Each parses, calls the engine once, and shapes the answer.
 */
export interface TransactionHandlers {
  begin(body: unknown): Promise<Answer>;
  status(id: string): Promise<Answer>;
  enlist(id: string, body: unknown): Promise<Answer>;
  commit(id: string, body: unknown): Promise<Answer>;
}

export function transactionHandlers({ engine, participantUrl }: Omit<TransactionRouteDeps, 'respond'>): TransactionHandlers {
  return {
    begin: async (body) => beginAnswer(await engine.begin(parseBegin(body))),
    status: async (id) => ok(found(id, await engine.status(id))),
    enlist: async (id, body) => {
      const { participant, url, prepare } = parseWith(enlistRequestSchema, body);
      // A held branch is prepared only through commit, which waits for every registration write
      // before its first PREPARE; an eager one prepares as soon as it has this answer, so its
      // registration must be written first (SPEC §3). Absent means eager: the safe default.
      const branch = await engine.enlist(id, participant, { url: participantUrl(url), awaitWrite: prepare !== 'held', prepare: prepare ?? 'eager' });
      return created({ branchId: branch.branchId, gid: branch.gid, expiresAt: new Date(branch.expiresAt).toISOString() });
    },
    commit: async (id, body) => {
      parseWith(commitRequestSchema, body ?? {});
      const result = await engine.commit(id);
      // 202: the commit decision is durable, and phase 2 keeps retrying the branches that have not acknowledged.
      return { status: result.phaseTwoPending ? 202 : 200, body: { id: result.txId, state: result.state, phaseTwoPending: result.phaseTwoPending } };
    },
  };
}

/** SPEC §5: the `/v1/transactions` API on express. */
export function transactionRoutes(app: Express, deps: TransactionRouteDeps, handlers: TransactionHandlers = transactionHandlers(deps)): void {
  const { engine, respond } = deps;
  const id = (req: Request): string => String(req.params.id);

  app
    .route('/v1/transactions')
    .post(respond.write((req) => handlers.begin(req.body)))
    .get(respond.read(async (req) => ok(await engine.list(parseWith(listQuerySchema, { ...req.query })))))
    .all(methodNotAllowed('GET, POST'));

  app
    .route('/v1/transactions/:id')
    .get(respond.read((req) => handlers.status(id(req))))
    .all(methodNotAllowed('GET'));

  app
    .route('/v1/transactions/:id/branches')
    .post(respond.write((req) => handlers.enlist(id(req), req.body)))
    .all(methodNotAllowed('POST'));

  app
    .route('/v1/transactions/:id/commit')
    .post(respond.write((req) => handlers.commit(id(req), req.body)))
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
