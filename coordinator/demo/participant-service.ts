import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import express, { type Express, type Response } from 'express';
import { Pool } from 'pg';
import { z } from 'zod';
import { carriedRequested, createParticipant, problemMiddleware, REGISTRATION_HEADER, registrationHeaderValue, transactionIdFrom, TwopcError } from '../../participant-sdk/src';
import type { BranchClient, BranchQueryable, EnlistOptions, ParticipantOptions, ProblemMiddlewareOptions } from '../../participant-sdk/src';

/** One business call of a participant service: its body, its work in the caller's branch, and its answer. */
export interface ServiceRoute<B, R = unknown> {
  /** `POST <path>`, with a JSON body and the `twopc-transaction` header. */
  path: string;
  body: z.ZodType<B>;
  /** The branch's work: it runs in `participant.enlist(txId, ...)`; a throw rolls the branch back and votes no. */
  work(db: BranchClient, body: B, txId: string): Promise<R>;
  enlist?(body: B): EnlistOptions;
  /** The answer once enlisted, from the body and what the work returned; default 200 `{"ok":true}`. A status without a body answers empty. */
  answer?(body: B, result: R): { status: number; body?: unknown };
}

/**
 * A business call that commits on its own: the work runs in a local
 * transaction of the service's pool (BEGIN; work; COMMIT) and takes no part
 * in any global transaction. What the same service does without twopc: the
 * bench's `http-local` baseline (not atomic across services).
 */
export interface LocalRoute<B, R = unknown> {
  path: string;
  body: z.ZodType<B>;
  work(db: BranchQueryable, body: B): Promise<R>;
  answer?(body: B, result: R): { status: number; body?: unknown };
}

/** The participant options a service may set (timers, mode); the rest comes from the service's own settings. */
export type ServiceParticipantOptions = Partial<
  Pick<ParticipantOptions, 'mode' | 'sweepIntervalMs' | 'sweepGraceMs' | 'presumeAbortAfterMs' | 'heldGraceMs' | 'requestTimeoutMs' | 'connectionLossWaitMs' | 'pruneIntervalMs'>
>;

export interface ParticipantServiceOptions {
  /** The participant's name at the coordinator. */
  name: string;
  port: number;
  databaseUrl: string;
  pool?: { max?: number; connectionTimeoutMillis?: number };
  /** The coordinator's base URL, or several instances' in order of preference. */
  coordinatorUrls: string[];
  apiToken?: string;
  secret: string;
  /** Where the coordinator calls this participant (default `http://127.0.0.1:<port>/twopc`; a proxy in front of it, say). */
  publicUrl?: string;
  participant?: ServiceParticipantOptions;
  routes: Array<ServiceRoute<any, any>>;
  /** Business calls outside any global transaction, each committed locally. */
  localRoutes?: Array<LocalRoute<any, any>>;
  /** Runs once the pool exists, before the participant starts (the service's tables, seed rows). */
  setup?(pool: Pool): Promise<void>;
  /** Mounted before the SDK's calls (a test's fault hooks); with it, the SDK's handler runs inside express, behind them. */
  beforeRouter?(app: Express): void;
  /** Sees every request first, before the SDK's handler and express; answering one (returning true) ends it (a bench's counters). */
  onRequest?(req: IncomingMessage, res: ServerResponse): boolean;
  /** How errors of the routes are answered (see the SDK's problemMiddleware). */
  problems?: ProblemMiddlewareOptions;
}

export interface RunningParticipantService {
  port: number;
  /** Stops taking requests, rolls back branches still held (prepared ones wait for their decision), ends the pool. */
  close(): Promise<void>;
}

/**
 * A participant service: its own database pool, the participant SDK's
 * handler at its public URL's path (`/twopc`), and its business calls, each enlisting the caller's branch of
 * the global transaction (the `twopc-transaction` header). The demo's bank
 * accounts, the shop example's services (their work written with ORMs), and
 * the tests', chaos runs' and bench's ledgers, are this with their own routes.
 *
 * @example
 * const service = await startParticipantService({ name: 'ledger', port: 8081, databaseUrl, coordinatorUrls: ['http://127.0.0.1:7070'], secret,
 *   routes: [{ path: '/transfer', body: z.object({ account: z.number(), delta: z.number() }), work: (db, b) => db.query('update accounts set balance = balance + $2 where id = $1', [b.account, b.delta]) }] });
 */
export async function startParticipantService(o: ParticipantServiceOptions): Promise<RunningParticipantService> {
  const pool = new Pool({ connectionString: o.databaseUrl, max: o.pool?.max ?? 10, ...(o.pool?.connectionTimeoutMillis ? { connectionTimeoutMillis: o.pool.connectionTimeoutMillis } : {}) });
  // An idle connection whose server went away (a database crash) must not end the service; the next query reports it.
  pool.on('error', () => undefined);
  try {
    await o.setup?.(pool);
  } catch (e) {
    await pool.end();
    throw e;
  }
  const participant = createParticipant({
    name: o.name,
    pool,
    coordinatorUrls: o.coordinatorUrls,
    ...(o.apiToken ? { apiToken: o.apiToken } : {}),
    secret: o.secret,
    publicUrl: o.publicUrl ?? `http://127.0.0.1:${o.port}/twopc`,
    ...o.participant,
  });
  await participant.start();

  const app = express();
  app.disable('etag');
  // The SDK's plain handler answers the coordinator's calls in front of express, unless hooks must see them first.
  const handler = participant.handler();
  o.beforeRouter?.(app);
  if (o.beforeRouter) app.use(handler);
  for (const route of o.routes) {
    app.post(route.path, express.json(), async (req, res) => {
      const txId = transactionIdFrom(req);
      if (!txId) throw new TwopcError('invalid-input', 'the twopc-transaction header is required', { field: 'twopc-transaction' });
      const body = parseRouteBody(route.body, req.body);
      if (carriedRequested(req)) {
        // Carried registration: the branch opens here, and its signed registration travels back with the answer.
        const carried = await participant.enlistCarried(txId, (db) => route.work(db, body, txId));
        res.setHeader(REGISTRATION_HEADER, registrationHeaderValue(carried.registration));
        sendAnswer(res, route.answer?.(body, carried.result));
        return;
      }
      const result = await participant.enlist(txId, (db) => route.work(db, body, txId), route.enlist?.(body));
      sendAnswer(res, route.answer?.(body, result));
    });
  }
  for (const route of o.localRoutes ?? []) {
    app.post(route.path, express.json(), async (req, res) => {
      const body = parseRouteBody(route.body, req.body);
      sendAnswer(res, route.answer?.(body, await inLocalTransaction(pool, (db) => route.work(db, body))));
    });
  }
  app.use(problemMiddleware(o.problems));

  const serve = o.beforeRouter ? app : (req: IncomingMessage, res: ServerResponse) => handler(req, res, () => app(req, res));
  const server = createServer((req, res) => {
    if (!o.onRequest?.(req, res)) serve(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, '127.0.0.1', () => resolve());
  });
  let closing: Promise<void> | undefined;
  return {
    port: o.port,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // Rolls back branches still held; prepared ones stay for the coordinator's decision.
        await participant.close();
        await pool.end();
        await closed;
      })();
      return closing;
    },
  };
}

function parseRouteBody<B>(schema: z.ZodType<B>, raw: unknown): B {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new TwopcError('invalid-input', `body.${issue.path.join('.')}: ${issue.message}`, { field: issue.path.join('.') });
}

/** The route's answer; default 200 `{"ok":true}`. A status without a body answers empty. */
function sendAnswer(res: Response, answer: { status: number; body?: unknown } = { status: 200, body: { ok: true } }): void {
  if (answer.body === undefined) res.status(answer.status).end();
  else res.status(answer.status).json(answer.body);
}

/** BEGIN; work; COMMIT on a connection of the pool (ROLLBACK if the work throws). */
async function inLocalTransaction<R>(pool: Pool, work: (db: BranchQueryable) => Promise<R>): Promise<R> {
  const client = await pool.connect();
  let broken: unknown;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    broken = await client.query('ROLLBACK').then(() => undefined, (err: unknown) => err);
    throw e;
  } finally {
    // A connection whose ROLLBACK failed is in an unknown state: destroyed, not reused.
    client.release(broken instanceof Error ? broken : undefined);
  }
}

const count = (min: number) => z.coerce.number().int().min(min);
/** The environment every participant service process reads (validated once, at start). */
const envSchema = z.object({
  NAME: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9_.-]'),
  PORT: count(1).max(65535),
  DATABASE_URL: z.string().min(1),
  /** One URL, or several instances' comma-separated, in order of preference. */
  COORDINATOR_URL: z.string().min(1).transform((s) => s.split(',').map((u) => u.trim())),
  TWOPC_API_TOKEN: z.string().min(1).optional(),
  TWOPC_PARTICIPANT_SECRET: z.string().min(16),
  POOL_SIZE: count(1).default(10),
  PUBLIC_URL: z.string().min(1).optional(),
});
export type ParticipantServiceEnv = z.output<typeof envSchema>;

/** What a service's entry adds to the settings of its environment: at least its routes. */
export type ParticipantServiceSpec = Partial<ParticipantServiceOptions> & Pick<ParticipantServiceOptions, 'routes'>;

/**
 * Runs a participant service as its process: settings from the environment
 * (NAME, PORT, DATABASE_URL, COORDINATOR_URL, TWOPC_API_TOKEN,
 * TWOPC_PARTICIPANT_SECRET, POOL_SIZE = 10, PUBLIC_URL), the rest from
 * `build`. Prints `{"ready":true,"port":N,"name":X}` once it serves; SIGTERM
 * or SIGINT close it and exit 0; a failure to start is printed and exits 1.
 *
 * @example
 * runParticipantService('ledger service', () => ({ routes: [transferRoute] }));
 */
export function runParticipantService(label: string, build: (env: ParticipantServiceEnv) => ParticipantServiceSpec): void {
  const main = async () => {
    const parsed = envSchema.safeParse(process.env);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${issue.path.join('.')} ${issue.message}`);
    }
    const env = parsed.data;
    const spec = build(env);
    const service = await startParticipantService({
      name: env.NAME,
      port: env.PORT,
      databaseUrl: env.DATABASE_URL,
      coordinatorUrls: env.COORDINATOR_URL,
      ...(env.TWOPC_API_TOKEN ? { apiToken: env.TWOPC_API_TOKEN } : {}),
      secret: env.TWOPC_PARTICIPANT_SECRET,
      ...(env.PUBLIC_URL ? { publicUrl: env.PUBLIC_URL } : {}),
      ...spec,
      pool: { max: env.POOL_SIZE, ...spec.pool },
    });
    // "ready" and "port" first: launchers match /"ready":true,"port":(\d+)/.
    process.stdout.write(`${JSON.stringify({ ready: true, port: service.port, name: env.NAME })}\n`);
    const stop = () => void service.close().finally(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  };
  main().catch((e) => {
    process.stderr.write(`${label} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
