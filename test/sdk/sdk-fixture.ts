import net, { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { Express } from 'express';
import type { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { createParticipant, ParticipantOptions, TwopcParticipant } from '../../participant-sdk/src';
import { buildGid } from '../../participant-sdk/src/gid';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from '../../participant-sdk/src/postgres';
import { signRequest } from '../../participant-sdk/src/signature';

/** GID prefix of the SDK suites; every test ends by asserting none of it is left prepared. */
export const PREFIX = 'tsdk';
export const SECRET = 'a-test-secret-of-some-length';
export const TOKEN = 'test-api-token';

export async function listen(app: Express): Promise<{ server: Server; url: string }> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** The URL of a local port nobody listens on (it was just closed): connections to it are refused. */
export async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

interface FakeTx {
  decision: 'commit' | 'abort' | null;
  expiresAt: number;
  branches: Array<{ branchId: number; gid: string; participant: string; url: string }>;
  /** Leave the branch out of what GET lists (a coordinator that lost it). */
  hideBranches?: boolean;
}

/**
 * Just enough of a coordinator for the SDK: enlist assigns GIDs, GET answers
 * what the test set, and `call` makes the signed calls a coordinator makes to
 * a participant's router.
 */
export class FakeCoordinator {
  readonly txs = new Map<string, FakeTx>();
  /** How GET /v1/transactions/:id answers transactions it has no entry for, or all of them when `down`. */
  getMode: 'normal' | 'down' | 'html-404' = 'normal';
  /** Whether the enlist answer carries expiresAt. */
  sendExpiresAt = true;
  timeoutMs = 30_000;
  readonly seenAuth: string[] = [];
  /** The `prepare` field of each enlist, in order (undefined when absent). */
  readonly seenPrepare: unknown[] = [];
  /** The `accepts` field of each enlist, in order (undefined when absent). */
  readonly seenAccepts: unknown[] = [];
  /** Refuse enlists that carry `accepts` with a 400, as a coordinator older than that field does. */
  refuseAccepts = false;
  url = '';
  private server?: Server;

  async start(): Promise<void> {
    const app = express();
    app.use(express.json());
    app.post('/v1/transactions/:id/branches', (req, res) => {
      this.seenAuth.push(String(req.headers.authorization));
      if (this.refuseAccepts && req.body.accepts !== undefined) {
        this.seenAccepts.push(req.body.accepts);
        const problem = { type: 'urn:twopc:problem:invalid-input', title: 'invalid-input', status: 400, code: 'invalid-input', detail: '(body): Unrecognized key: "accepts"', field: '(body)' };
        return void res.status(400).type('application/problem+json').send(JSON.stringify(problem));
      }
      const tx = this.tx(String(req.params.id));
      const branchId = tx.branches.length + 1;
      const gid = buildGid(PREFIX, String(req.params.id), branchId);
      tx.branches.push({ branchId, gid, participant: req.body.participant, url: req.body.url });
      this.seenPrepare.push(req.body.prepare);
      this.seenAccepts.push(req.body.accepts);
      res.status(201).json({ branchId, gid, ...(this.sendExpiresAt ? { expiresAt: new Date(tx.expiresAt).toISOString() } : {}) });
    });
    app.get('/v1/transactions/:id', (req, res) => {
      const tx = this.txs.get(String(req.params.id));
      if (this.getMode === 'down') return void res.status(503).type('application/problem+json').send(JSON.stringify({ type: 'x', title: 'x', status: 503, code: 'not-ready' }));
      if (this.getMode === 'html-404' || !tx) {
        if (this.getMode === 'html-404') return void res.status(404).type('text/html').send('<h1>Not Found</h1>');
        return void res.status(404).type('application/problem+json').send(JSON.stringify({ type: 'urn:twopc:problem:not-found', title: 'No such transaction', status: 404, code: 'not-found', detail: 'no transaction' }));
      }
      res.json({
        id: req.params.id,
        state: tx.decision === null ? 'active' : tx.decision === 'commit' ? 'committed' : 'aborted',
        decision: tx.decision,
        createdAt: new Date(tx.expiresAt - this.timeoutMs).toISOString(),
        expiresAt: new Date(tx.expiresAt).toISOString(),
        branches: tx.hideBranches ? [] : tx.branches.map((b) => ({ ...b, state: 'prepared' })),
      });
    });
    const { server, url } = await listen(app);
    this.server = server;
    this.url = url;
  }

  tx(id: string): FakeTx {
    let tx = this.txs.get(id);
    if (!tx) {
      tx = { decision: null, expiresAt: Date.now() + this.timeoutMs, branches: [] };
      this.txs.set(id, tx);
    }
    return tx;
  }

  /** A new transaction id, known to this coordinator. */
  begin(timeoutMs = this.timeoutMs): string {
    const id = uuidv7();
    this.txs.set(id, { decision: null, expiresAt: Date.now() + timeoutMs, branches: [] });
    return id;
  }

  branch(txId: string, branchId = 1): { txId: string; branchId: number; gid: string } {
    return { txId, branchId, gid: buildGid(PREFIX, txId, branchId) };
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }
}

/** A started participant `orders` on `pool`, its router mounted at `{url}/twopc` (its publicUrl, `base`) of a fresh express app. */
export async function mountParticipant(
  pool: PostgresPool,
  coordinator: FakeCoordinator,
  overrides: Partial<ParticipantOptions> = {},
): Promise<{ participant: TwopcParticipant; server: Server; base: string }> {
  const app = express();
  const { server, url } = await listen(app);
  const base = `${url}/twopc`;
  const participant = createParticipant({
    name: 'orders',
    pool,
    coordinatorUrl: coordinator.url,
    apiToken: TOKEN,
    secret: SECRET,
    publicUrl: base,
    gidPrefix: PREFIX,
    sweepIntervalMs: 0,
    pruneIntervalMs: 0,
    ...overrides,
  });
  app.use('/twopc', participant.router());
  await participant.start();
  return { participant, server, base };
}

export interface CallAnswer {
  status: number;
  type: string;
  /** Parsed JSON (or the raw text); `any` so tests can check answers field by field. */
  body: any;
}

/**
 * A call from "the coordinator" to a participant router at `base` (its
 * publicUrl). Signed with SECRET unless `signature` says otherwise.
 */
export async function callParticipant(
  base: string,
  method: 'GET' | 'POST',
  suffix: string,
  body?: unknown,
  options: { signature?: string | null; secret?: string; now?: number; rawBody?: string } = {},
): Promise<CallAnswer> {
  const url = new URL(`${base}${suffix}`);
  const text = options.rawBody ?? (body === undefined ? '' : JSON.stringify(body));
  const headers: Record<string, string> = {};
  if (method === 'POST') headers['content-type'] = 'application/json';
  const signature = options.signature === undefined ? signRequest(options.secret ?? SECRET, method, `${url.pathname}${url.search}`, text, options.now) : options.signature;
  if (signature !== null) headers['twopc-signature'] = signature;
  const res = await fetch(url, { method, headers, body: method === 'POST' ? text : undefined });
  const raw = await res.text();
  let parsed: unknown = raw;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // left as text
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: parsed };
}

/** A pg pool that records every statement sent through it. */
export class RecordingPool implements PostgresPool {
  readonly statements: string[] = [];

  constructor(readonly pg: Pool) {}

  on(event: 'error', listener: (err: Error) => void): void {
    this.pg.on(event, listener);
  }

  removeListener(event: 'error', listener: (err: Error) => void): void {
    this.pg.removeListener(event, listener);
  }

  async connect(): Promise<PostgresPoolClient> {
    const client = await this.pg.connect();
    return {
      query: (text, values) => {
        this.statements.push(typeof text === 'string' ? text : text.text);
        return client.query(text as string, values as unknown[]) as Promise<PostgresQueryResult | PostgresQueryResult[]>;
      },
      release: (err) => client.release(err),
      on: (event, listener) => client.on(event, listener),
      removeListener: (event, listener) => client.removeListener(event, listener),
    };
  }
}

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
