import fs from 'node:fs';
import net from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import type { Participant } from '../../coordinator/engine/ports/participant';
import { createCoordinatorHttp } from '../../coordinator/service/app';
import type { ForwardRequest, TransactionForwarder } from '../../coordinator/service/forwarding';
import { IdempotencyStore } from '../../coordinator/service/idempotency';
import { CoordinatorMetrics } from '../../coordinator/service/metrics';

/**
 * The hot path (coordinator/service/hot-path.ts) serves begin, enlist, commit
 * and status without express. These tests hold it to express's behaviour:
 * every request below is sent once in its canonical spelling (hot path) and
 * once with a trailing slash (express's router, which matches it to the same
 * route), and the two answers must be the same. Then the forwarding hook,
 * the metrics labels, and enlist's `prepare` timing.
 */

const TOKEN = 'hot-path-token-0123456789';
const OTHER_ID = '0190a0b0-c0d0-7e0f-8011-223344556677';

/** A participant that votes yes and acknowledges everything. */
function yesParticipant(name: string): Participant {
  return { name, prepare: async () => ({ vote: 'yes' }), commit: async () => undefined, rollback: async () => undefined, close: async () => undefined };
}

/** Holds the file log's `enlist` appends while closed, so a test can see who waits for them. */
class EnlistGate {
  private open = true;
  private waiting: Array<() => void> = [];
  held = 0;

  close(): void {
    this.open = false;
  }

  release(): void {
    this.open = true;
    for (const go of this.waiting.splice(0)) go();
  }

  wrap(log: FileDecisionLog): FileDecisionLog {
    return new Proxy(log, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (prop !== 'append' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return async (record: { type: string }) => {
          if (record.type === 'enlist' && !this.open) {
            this.held += 1;
            await new Promise<void>((go) => this.waiting.push(go));
          }
          return (value as (r: unknown) => Promise<void>).call(target, record);
        };
      },
    });
  }
}

interface Harness {
  base: string;
  gate: EnlistGate;
  forwarded: ForwardRequest[];
  /** What each enlist said it accepts, as the app passed it on (url and accepts). */
  accepted: Array<[string, readonly string[] | undefined]>;
  /** `METHOD url` of each request that reached express's layers (the hot path answers before them). */
  reachedExpress: string[];
  /** `METHOD url` of each request express's app.handle took (the listener serves the hot routes without it). */
  appHandled: string[];
  call(method: string, p: string, init?: { body?: string | Buffer; headers?: Record<string, string> }): Promise<Answer>;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  headers: Record<string, string | null>;
  body: any;
}

/** `via`: the server's listener (what `twopc serve` runs; default) or the express app alone (`app.listen`). */
async function start(options: { forwardIds?: Set<string>; forwardThrows?: boolean; via?: 'listener' | 'app' } = {}): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-hot-'));
  const gate = new EnlistGate();
  const engine = new TransactionEngine({
    log: gate.wrap(new FileDecisionLog({ dir })),
    participants: new ParticipantRegistry([], (name) => yesParticipant(name)),
    config: parseEngineConfig({ sweepIntervalMs: 0 }),
  });
  await engine.start();
  const forwarded: ForwardRequest[] = [];
  const forwarder: TransactionForwarder = {
    async forward(request) {
      forwarded.push(request);
      if (options.forwardThrows) throw new Error('owner unreachable');
      if (!options.forwardIds?.has(request.txId)) return undefined;
      return { status: 299, headers: { 'content-type': 'application/json; charset=utf-8', 'x-owner': 'other' }, body: Buffer.from('{"relayed":true}') };
    },
  };
  const metrics = new CoordinatorMetrics({ inDoubt: () => 0, live: () => 0 });
  const reachedExpress: string[] = [];
  const accepted: Harness['accepted'] = [];
  const countRequests = metrics.httpMiddleware;
  (metrics as { httpMiddleware: typeof countRequests }).httpMiddleware = (req, res, next) => {
    reachedExpress.push(`${req.method} ${req.url}`);
    countRequests(req, res, next);
  };
  const { app, listener } = createCoordinatorHttp({
    engine,
    metrics,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    apiTokens: [TOKEN],
    idempotency: new IdempotencyStore({ ttlMs: 60_000, maxKeys: 100 }),
    bodyLimitBytes: 1024,
    participantUrls: { enabled: true, allowList: [], accepts: (url, said) => accepted.push([url, said]) },
    version: 'test',
    ...(options.forwardIds || options.forwardThrows ? { forwarder } : {}),
  });
  const appHandled: string[] = [];
  // express's own entry (its types leave it out): every request the app serves passes here.
  const routed = app as unknown as { handle(req: IncomingMessage, res: ServerResponse, next?: unknown): void };
  const handle = routed.handle.bind(app);
  routed.handle = (req, res, next) => {
    appHandled.push(`${req.method} ${req.url}`);
    handle(req, res, next);
  };
  const server: Server = options.via === 'app' ? app.listen(0, '127.0.0.1') : createServer(listener).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    base,
    gate,
    forwarded,
    reachedExpress,
    appHandled,
    accepted,
    async call(method, p, init = {}) {
      const res = await fetch(`${base}${p}`, { method, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers }, ...(init.body === undefined ? {} : { body: init.body }) });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // text answers stay text
      }
      const headers: Record<string, string | null> = {};
      for (const h of ['content-type', 'www-authenticate', 'retry-after', 'idempotent-replayed', 'allow', 'x-owner']) headers[h] = res.headers.get(h);
      return { status: res.status, headers, body };
    },
    async close() {
      gate.release();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await engine.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

/** Ids, times and paths differ between the two spellings; everything else must not. */
function comparable(answer: Answer): unknown {
  const text = JSON.stringify(answer.body)
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>')
    .replace(/twopc_[0-9a-f]{32}_\d+/g, '<gid>')
    .replace(/\d{4}-\d{2}-\d{2}T[0-9:.]+Z/g, '<time>')
    .replace(/\/v1\/transactions[^ "]*/g, '<path>');
  return { status: answer.status, headers: answer.headers, body: JSON.parse(text) };
}

describe('coordinator hot path', () => {
  let h: Harness;

  afterEach(async () => {
    await h?.close();
  });

  it('answers exactly as express does, for good and bad requests alike', async () => {
    h = await start();
    const id = (await h.call('POST', '/v1/transactions')).body.id as string;
    const enlisted = (await h.call('POST', `/v1/transactions/${id}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p' }))).body.gid;
    expect(enlisted).toMatch(/^twopc_/);
    const deep = `{"metadata":${'{"a":'.repeat(20)}1${'}'.repeat(20)}}`;
    const cases: Array<[string, string, { body?: string | Buffer; headers?: Record<string, string> }]> = [
      ['POST', '/v1/transactions', {}],
      ['POST', '/v1/transactions', json({ timeoutMs: 5000, metadata: { order: 7 } })],
      ['POST', '/v1/transactions', json({ timeoutMs: -1 })],
      ['POST', '/v1/transactions', json({ nope: 1 })],
      ['POST', '/v1/transactions', { body: deep, headers: { 'content-type': 'application/json' } }],
      ['POST', '/v1/transactions', { body: '{"timeoutMs":', headers: { 'content-type': 'application/json' } }],
      ['POST', '/v1/transactions', { body: '"a string"', headers: { 'content-type': 'application/json' } }],
      ['POST', '/v1/transactions', { body: 'timeoutMs=5', headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
      ['POST', '/v1/transactions', { body: 'x', headers: {} }],
      ['POST', '/v1/transactions', { body: gzipSync('{}'), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }],
      ['POST', '/v1/transactions', { body: '{}', headers: { 'content-type': 'application/json; charset=latin-7' } }],
      ['POST', '/v1/transactions', { body: JSON.stringify({ metadata: { a: 'x'.repeat(2000) } }), headers: { 'content-type': 'application/json' } }],
      ['POST', '/v1/transactions', { ...json({}), headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' } }],
      ['POST', '/v1/transactions', { ...json({}), headers: { 'content-type': 'application/json', authorization: '' } }],
      ['POST', '/v1/transactions', { ...json({}), headers: { 'content-type': 'application/json', 'idempotency-key': 'bad key' } }],
      ['GET', `/v1/transactions/${id}`, {}],
      ['GET', `/v1/transactions/${OTHER_ID}`, {}],
      ['GET', `/v1/transactions/${OTHER_ID}`, { headers: { authorization: 'Bearer wrong' } }],
      ['POST', `/v1/transactions/${OTHER_ID}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p' })],
      ['POST', `/v1/transactions/${id}/branches`, json({ participant: 'p', url: 'ftp://x' })],
      ['POST', `/v1/transactions/${id}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p', prepare: 'later' })],
      ['POST', `/v1/transactions/${id}/branches`, json({ participant: 'p' })],
      ['POST', `/v1/transactions/${id}/branches`, {}],
      ['POST', `/v1/transactions/${OTHER_ID}/commit`, {}],
      ['POST', `/v1/transactions/${id}/commit`, json({ force: true })],
    ];
    for (const [method, p, init] of cases) {
      const hot = await h.call(method, p, init);
      const viaExpress = await h.call(method, `${p}/`, init);
      expect([method, p, init.headers, comparable(hot)]).toEqual([method, p, init.headers, comparable(viaExpress)]);
    }
    // And the happy commit, once per spelling, on two transactions with one branch each.
    const other = (await h.call('POST', '/v1/transactions')).body.id as string;
    await h.call('POST', `/v1/transactions/${other}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p' }));
    const hot = await h.call('POST', `/v1/transactions/${id}/commit`);
    const viaExpress = await h.call('POST', `/v1/transactions/${other}/commit/`);
    expect(comparable(hot)).toEqual(comparable(viaExpress));
    expect(hot.body).toMatchObject({ id, state: 'committed' });
  });

  it('answers the canonical spelling before express, and everything else through express', async () => {
    // Served by the app alone (app.listen): the hot path is its first layer.
    h = await start({ via: 'app' });
    const id = (await h.call('POST', '/v1/transactions')).body.id as string;
    await h.call('POST', `/v1/transactions/${id}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p' }));
    await h.call('GET', `/v1/transactions/${id}`);
    await h.call('GET', `/v1/transactions/${id}`, { headers: { authorization: 'Bearer wrong' } });
    await h.call('POST', `/v1/transactions/${id}/commit`);
    expect(h.reachedExpress).toEqual([]);
    // Another spelling, a conditional GET, another method or route: express's.
    await h.call('GET', `/v1/transactions/${id}/`);
    await h.call('GET', `/v1/transactions/${id}`, { headers: { 'if-none-match': '"x"' } });
    await h.call('HEAD', `/v1/transactions/${id}`);
    await h.call('GET', `/v1/transactions/${id.toUpperCase()}`);
    await h.call('POST', `/v1/transactions/${id}/abort`);
    await h.call('GET', '/v1/transactions');
    expect(h.reachedExpress).toEqual([
      `GET /v1/transactions/${id}/`,
      `GET /v1/transactions/${id}`,
      `HEAD /v1/transactions/${id}`,
      `GET /v1/transactions/${id.toUpperCase()}`,
      `POST /v1/transactions/${id}/abort`,
      'GET /v1/transactions',
    ]);
  });

  it("serves the canonical spelling without entering express at all when served by the listener (twopc serve's)", async () => {
    h = await start();
    const id = (await h.call('POST', '/v1/transactions')).body.id as string;
    await h.call('POST', `/v1/transactions/${id}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p' }));
    await h.call('GET', `/v1/transactions/${id}`);
    await h.call('POST', `/v1/transactions/${id}/commit`);
    expect(h.appHandled).toEqual([]);
    // What the hot path declines goes to the app, once.
    const slash = await h.call('GET', `/v1/transactions/${id}/`);
    expect(slash.body).toMatchObject({ id, state: 'completed' });
    expect(h.appHandled).toEqual([`GET /v1/transactions/${id}/`]);
    expect(h.reachedExpress).toEqual([`GET /v1/transactions/${id}/`]);
  });

  it('a JSON body cut short by its client begins nothing, and the coordinator serves on', async () => {
    h = await start();
    const before = JSON.stringify((await h.call('GET', '/v1/transactions')).body);
    const { port } = new URL(h.base);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /v1/transactions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"timeoutMs":`);
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    const listed = await h.call('GET', '/v1/transactions');
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toBe(before);
    const begun = await h.call('POST', '/v1/transactions', json({ timeoutMs: 5000 }));
    expect(begun.status).toBe(201);
  });

  it('replays an Idempotency-Key answer and refuses the key for another body, like express', async () => {
    h = await start();
    const key = { 'content-type': 'application/json', 'idempotency-key': 'k-1' };
    const first = await h.call('POST', '/v1/transactions', { body: '{"timeoutMs":5000}', headers: key });
    const again = await h.call('POST', '/v1/transactions', { body: '{"timeoutMs":5000}', headers: key });
    expect([first.status, again.status, again.body.id, again.headers['idempotent-replayed']]).toEqual([201, 201, first.body.id, 'true']);
    // The exact bytes count: the same JSON spelled differently is another request.
    const reused = await h.call('POST', '/v1/transactions', { body: '{ "timeoutMs": 5000 }', headers: key });
    expect([reused.status, reused.body.code]).toEqual([422, 'idempotency-key-reused']);
  });

  it('counts hot requests in the metrics by route pattern, and refused ones as unmatched', async () => {
    h = await start();
    const id = (await h.call('POST', '/v1/transactions')).body.id as string;
    await h.call('GET', `/v1/transactions/${id}`);
    await h.call('GET', `/v1/transactions/${id}`, { headers: { authorization: 'Bearer wrong' } });
    const metrics = String((await h.call('GET', '/metrics')).body);
    expect(metrics).toMatch(/twopc_http_request_seconds_count\{route="\/v1\/transactions",method="POST",status="201"\} 1/);
    expect(metrics).toMatch(/twopc_http_request_seconds_count\{route="\/v1\/transactions\/:id",method="GET",status="200"\} 1/);
    expect(metrics).toMatch(/twopc_http_request_seconds_count\{route="unmatched",method="GET",status="401"\} 1/);
  });

  describe('forwarding hook', () => {
    it('relays requests for a transaction another instance owns, after auth and the body, with the exact bytes', async () => {
      h = await start({ forwardIds: new Set([OTHER_ID]) });
      const body = '{ }';
      const relayed = await h.call('POST', `/v1/transactions/${OTHER_ID}/commit?x=1`, { body, headers: { 'content-type': 'application/json', 'idempotency-key': 'k' } });
      expect([relayed.status, relayed.headers['x-owner'], relayed.body]).toEqual([299, 'other', { relayed: true }]);
      expect(h.forwarded).toHaveLength(1);
      const [request] = h.forwarded;
      expect([request.txId, request.method, request.url, request.body?.toString(), request.headers['idempotency-key']]).toEqual([
        OTHER_ID,
        'POST',
        `/v1/transactions/${OTHER_ID}/commit?x=1`,
        body,
        'k',
      ]);
      const status = await h.call('GET', `/v1/transactions/${OTHER_ID}`);
      expect([status.status, h.forwarded[1].method, h.forwarded[1].body]).toEqual([299, 'GET', undefined]);
      // Express's hook (the non-canonical spelling) relays the same way.
      expect((await h.call('GET', `/v1/transactions/${OTHER_ID}/`)).status).toBe(299);
      // Refused before the hook: no token, or a body that is not JSON.
      expect((await h.call('GET', `/v1/transactions/${OTHER_ID}`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await h.call('POST', `/v1/transactions/${OTHER_ID}/commit`, { body: 'x', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
      expect(h.forwarded).toHaveLength(3);
    });

    it('answers locally when nobody else owns the transaction; begin is never relayed', async () => {
      h = await start({ forwardIds: new Set([OTHER_ID]) });
      const id = (await h.call('POST', '/v1/transactions')).body.id as string;
      expect(h.forwarded).toHaveLength(0);
      expect((await h.call('GET', `/v1/transactions/${id}`)).body).toMatchObject({ id, state: 'active' });
      expect(h.forwarded.map((r) => r.txId)).toEqual([id]);
    });

    it('a failing hook is a 500 problem, as in express', async () => {
      h = await start({ forwardThrows: true });
      const hot = await h.call('POST', `/v1/transactions/${OTHER_ID}/commit`);
      const viaExpress = await h.call('POST', `/v1/transactions/${OTHER_ID}/commit/`);
      expect([hot.status, hot.body.code]).toEqual([500, 'internal-error']);
      expect(comparable(hot)).toEqual(comparable(viaExpress));
    });
  });

  it('passes on what a participant accepts only once its enlist succeeded', async () => {
    h = await start();
    const id = (await h.call('POST', '/v1/transactions')).body.id as string;
    await h.call('POST', `/v1/transactions/${id}/abort`, json({}));
    const refused = await h.call('POST', `/v1/transactions/${id}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p', accepts: ['batch'] }));
    expect(refused.status).toBe(409);
    expect(h.accepted).toEqual([]);
    const live = (await h.call('POST', '/v1/transactions')).body.id as string;
    expect((await h.call('POST', `/v1/transactions/${live}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p', accepts: ['batch'] }))).status).toBe(201);
    expect(h.accepted).toEqual([['http://127.0.0.1:1/p', ['batch']]]);
  });

  describe('enlist timing (`prepare`)', () => {
    it('a held branch is answered before its registration is written; commit still waits for the write', async () => {
      h = await start();
      const id = (await h.call('POST', '/v1/transactions')).body.id as string;
      h.gate.close();
      const held = await h.call('POST', `/v1/transactions/${id}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p', prepare: 'held' }));
      // Answered while the write is still held back by the gate.
      expect([held.status, h.gate.held]).toEqual([201, 1]);
      let committed = false;
      const commit = h.call('POST', `/v1/transactions/${id}/commit`).then((a) => {
        committed = true;
        return a;
      });
      // A full round trip later, the commit is still waiting for the registration.
      await h.call('GET', `/v1/transactions/${id}`);
      expect(committed).toBe(false);
      h.gate.release();
      expect((await commit).body).toMatchObject({ state: 'committed' });
    });

    it.each([['eager'], [undefined]])('an enlist with prepare %s is answered only once its registration is written', async (prepare) => {
      h = await start();
      const id = (await h.call('POST', '/v1/transactions')).body.id as string;
      h.gate.close();
      let answered = false;
      const enlist = h.call('POST', `/v1/transactions/${id}/branches`, json({ participant: 'p', url: 'http://127.0.0.1:1/p', ...(prepare ? { prepare } : {}) })).then((a) => {
        answered = true;
        return a;
      });
      while (h.gate.held === 0) await h.call('GET', '/healthz');
      await h.call('GET', `/v1/transactions/${id}`);
      expect(answered).toBe(false);
      h.gate.release();
      expect((await enlist).status).toBe(201);
    });
  });
});
