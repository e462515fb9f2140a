import type { RequestHandler } from 'express';
import { beginRequestSchema, enlistRequestSchema } from '../../participant-sdk/src';
import type { CarriedRegistration } from '../../participant-sdk/src';
import type { InstancesReport } from '../cluster/instances-report';
import type { TransactionEngine } from '../engine/transaction-engine';
import { TwopcError } from '../engine/ports/protocol';
import { verifyLog } from '../log/file/log-verify';
import { emptyRequestSchema, historyAnswer, recoverRequestSchema, resolveRequestSchema, retryRequestSchema, settleRequestSchema } from './admin-schemas';
import { Answer, created, ok, problem } from './answers';
import { abortRequestSchema, commitRequestSchema, listQuerySchema, MAX_METADATA_DEPTH } from './api-schemas';
import type { OperatorIdentity } from './admin-auth';
import { abortCarried, capabilitiesAnswer, commitCarried } from './carried-routes';
import type { CoordinatorMetrics } from './metrics';
import { assertJsonDepth, parseWith } from './request-validation';

/** What a route's logic reads of a request, whatever server received it. */
export interface RouteCall {
  /** The `:id` path parameter ('' on a route without one). */
  id: string;
  /** The parsed JSON body (undefined when there was none). */
  body: unknown;
  /** The query string's parameters. */
  query: Record<string, unknown>;
  /** On `/v1/admin`: the operator whose token the call came with (its name is recorded with each action). */
  operator?: OperatorIdentity;
}

/**
 * A route of the API, free of any HTTP framework: it parses, calls the engine
 * once, and returns the answer (or throws a TwopcError). `read` routes have
 * no side effects; `write` routes honour Idempotency-Key. A `hot` route is
 * also served by the hot path (hot-path.ts), before express's router.
 */
export interface AnswerRoute {
  method: 'GET' | 'POST';
  /** An express path pattern; it is also the route's metrics label. */
  path: string;
  kind: 'read' | 'write';
  hot?: true;
  run(call: RouteCall): Promise<Answer>;
}

/** An operations route that writes its own response (`/metrics` answers text, not JSON). */
export interface RawRoute {
  method: 'GET';
  path: string;
  raw: RequestHandler;
}

export type Route = AnswerRoute | RawRoute;

export interface RouteDeps {
  engine: TransactionEngine;
  metrics: CoordinatorMetrics;
  /** The OpenAPI document served at `/openapi.json`. */
  openapi: object;
  /** Checks and normalizes an enlisted participant URL; throws `invalid-input` naming `url`. */
  participantUrl(url: string): string;
  /** What a participant service said, enlisting, of the protocol forms it serves (batching). */
  participantAccepts?(url: string, accepts: readonly string[] | undefined): void;
  /** Checks a carried registration's signature with the participant secret (absent without one). */
  registrationSigned?(txId: string, registration: CarriedRegistration): boolean;
  /** The instances sharing the decision log (one, on a file log). */
  instances(): Promise<InstancesReport>;
  /** Directory of the file decision log, for `log/verify`; absent when the coordinator runs on another store. */
  logDir?: string;
}

/**
 * Requests under these paths are for one transaction: one that another live
 * instance owns is answered by that instance (express's forwarding hook and
 * the hot path both relay by this list). Admin calls count too (show,
 * history, retry, resolve, settle): acted on here, an operator's resolve could record
 * a decision under a transaction its live owner is running.
 */
export const OWNED_PATHS = ['/v1/transactions/:id', '/v1/admin/transactions/:id'] as const;

/**
 * The coordinator's routes (SPEC §5), each declared once: the operations
 * endpoints, `/v1/transactions` and the operator API under `/v1/admin` (what
 * `twopc <command> --url` calls). app.ts registers them on express, behind
 * the `/v1` gates (bearer auth, the admin token, readiness, the JSON body);
 * the operations endpoints carry no transaction data and need no token, so
 * probes and scrapers need none (bind the listener to a private interface, or
 * put a proxy in front, if `/metrics` must stay private).
 */
export function routeTable(deps: RouteDeps): readonly Route[] {
  const { engine } = deps;
  const list = async ({ query }: RouteCall): Promise<Answer> => ok(await engine.admin.list(parseWith(listQuerySchema, query)));
  return [
    { method: 'GET', path: '/healthz', kind: 'read', run: async () => ok({ status: 'ok' }) },
    // Ready only once recovery has decided every transaction in the log (and not while stopping).
    { method: 'GET', path: '/readyz', kind: 'read', run: async () => ({ status: engine.ready ? 200 : 503, body: { ready: engine.ready } }) },
    {
      method: 'GET',
      path: '/metrics',
      raw: async (_req, res) => {
        res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
      },
    },
    { method: 'GET', path: '/openapi.json', kind: 'read', run: async () => ok(deps.openapi) },

    { method: 'POST', path: '/v1/transactions', kind: 'write', hot: true, run: async ({ body }) => beginAnswer(await engine.begin(parseBegin(body))) },
    { method: 'GET', path: '/v1/transactions', kind: 'read', run: list },
    { method: 'GET', path: '/v1/capabilities', kind: 'read', run: async () => capabilitiesAnswer(deps) },
    { method: 'GET', path: '/v1/transactions/:id', kind: 'read', hot: true, run: async ({ id }) => ok(found(id, await engine.status(id))) },
    {
      method: 'POST',
      path: '/v1/transactions/:id/branches',
      kind: 'write',
      hot: true,
      run: async ({ id, body }) => {
        const { participant, url, prepare, accepts } = parseWith(enlistRequestSchema, body);
        const checkedUrl = deps.participantUrl(url);
        // A held branch is prepared only through commit, which waits for every registration write
        // before its first PREPARE; an eager one prepares as soon as it has this answer, so its
        // registration must be written first (SPEC §3). Absent means eager: the safe default.
        const branch = await engine.enlist(id, participant, { url: checkedUrl, awaitWrite: prepare !== 'held', prepare: prepare ?? 'eager' });
        // Only once enlisted: a refused enlist says nothing of the URL. Before the coordinator's
        // first call to the branch (its prepare), which comes after this answer.
        deps.participantAccepts?.(checkedUrl, accepts);
        return created({ branchId: branch.branchId, gid: branch.gid, expiresAt: new Date(branch.expiresAt).toISOString() });
      },
    },
    {
      method: 'POST',
      path: '/v1/transactions/:id/commit',
      kind: 'write',
      hot: true,
      run: async ({ id, body }) => {
        const { answerAt, registrations } = parseWith(commitRequestSchema, body ?? {});
        const result = registrations ? await commitCarried(deps, id, registrations, answerAt) : await engine.commit(id, answerAt ? { answerAt } : {});
        // 202: the commit decision is durable, and phase 2 keeps retrying the branches that have not acknowledged.
        return { status: result.phaseTwoPending ? 202 : 200, body: { id: result.txId, state: result.state, phaseTwoPending: result.phaseTwoPending } };
      },
    },
    {
      method: 'POST',
      path: '/v1/transactions/:id/abort',
      kind: 'write',
      run: async ({ id, body }) => {
        const { reason, registrations } = parseWith(abortRequestSchema, body ?? {});
        const why = reason === undefined ? {} : { cause: 'application', message: reason };
        const result = registrations ? await abortCarried(deps, id, registrations, why) : await engine.abort(id, why);
        return ok({ id: result.txId, state: result.state });
      },
    },

    { method: 'GET', path: '/v1/admin/transactions', kind: 'read', run: list },
    { method: 'GET', path: '/v1/admin/transactions/:id', kind: 'read', run: async ({ id }) => ok(found(id, await engine.status(id))) },
    { method: 'GET', path: '/v1/admin/transactions/:id/history', kind: 'read', run: async ({ id }) => ok(historyAnswer(id, await engine.admin.history(id))) },
    { method: 'GET', path: '/v1/admin/transactions/:id/phase-two', kind: 'read', run: async ({ id }) => ok(await engine.admin.phaseTwo(id)) },
    {
      method: 'POST',
      path: '/v1/admin/transactions/:id/retry',
      kind: 'write',
      run: async ({ id, body, operator }) => {
        const { waitMs } = parseWith(retryRequestSchema, body ?? {});
        return ok(await engine.admin.retry(id, waitMs ?? engine.config.commitWaitMs, operator?.name));
      },
    },
    {
      method: 'POST',
      path: '/v1/admin/transactions/:id/resolve',
      kind: 'write',
      run: async ({ id, body, operator }) => {
        // Goes through the decision register: a contradiction is a 409 `state-conflict`, never a second decision.
        const { outcome } = parseWith(resolveRequestSchema, body ?? {});
        return ok(await engine.admin.resolve(id, outcome, operator?.name));
      },
    },
    {
      method: 'POST',
      path: '/v1/admin/transactions/:id/settle',
      kind: 'write',
      run: async ({ id, body, operator }) => {
        // Answers once the transaction's `complete` is stored; refusals (409, 503) change nothing.
        const { note, outcome } = parseWith(settleRequestSchema, body ?? {});
        return ok(await engine.admin.settle(id, { by: operator?.name ?? 'anonymous', note, ...(outcome ? { outcome } : {}) }));
      },
    },
    {
      method: 'POST',
      path: '/v1/admin/recover',
      kind: 'write',
      run: async ({ body }) => {
        const { waitMs } = parseWith(recoverRequestSchema, body ?? {});
        return ok(await engine.admin.recover(waitMs === undefined ? {} : { waitMs }));
      },
    },
    { method: 'GET', path: '/v1/admin/orphans', kind: 'read', run: async () => ok(await engine.admin.orphans()) },
    {
      method: 'POST',
      path: '/v1/admin/orphans/rollback',
      kind: 'write',
      run: async ({ body, operator }) => {
        parseWith(emptyRequestSchema, body ?? {});
        return ok({ results: await engine.admin.rollbackOrphans(operator?.name) });
      },
    },
    {
      method: 'POST',
      path: '/v1/admin/log/compact',
      kind: 'write',
      run: async ({ body }) => {
        parseWith(emptyRequestSchema, body ?? {});
        return ok(await engine.admin.compactLog());
      },
    },
    // Who the caller is: the console shows actions only to an admin (the API refuses a viewer's anyway).
    { method: 'GET', path: '/v1/admin/whoami', kind: 'read', run: async ({ operator }) => ok(operator ?? { name: 'anonymous', role: 'admin' }) },
    { method: 'GET', path: '/v1/admin/instances', kind: 'read', run: async () => ok(await deps.instances()) },
    {
      method: 'GET',
      path: '/v1/admin/log/verify',
      kind: 'read',
      run: async () => {
        if (engine.logKind !== 'file' || deps.logDir === undefined) {
          return problem(501, 'not-supported', `log verify checks a file decision log; this coordinator's decision log is ${engine.logKind}: check it with that store's own tools`);
        }
        // Read-only and lock-free: the running log may show a write in flight at its very end as a torn tail.
        return ok(await verifyLog(deps.logDir));
      },
    },
  ];
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
