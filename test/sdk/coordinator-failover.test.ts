import http, { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoordinatorClient, CoordinatorClientOptions } from '../../participant-sdk/src';
import { Answer, Attempt, nextStep } from '../../participant-sdk/src/failover';
import { closedPortUrl } from './sdk-fixture';

const ID = '01890a5d-ac96-774b-bcce-b302099a8057';
const TX = { id: ID, state: 'active', decision: null, createdAt: 'a', expiresAt: 'b', branches: [] };
const ENLIST = { participant: 'orders', url: 'http://orders/twopc' };
const BRANCH = { branchId: 1, gid: `twopc_${ID.replace(/-/g, '')}_1` };

interface Seen {
  method: string;
  path: string;
  key?: string;
  body: string;
}
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** A stand-in coordinator instance: records every request it got (body read in full), then lets `handle` answer. */
class FakeInstance {
  readonly seen: Seen[] = [];
  url = '';
  private readonly server: http.Server;

  constructor(public handle: Handler) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.seen.push({ method: req.method!, path: req.url!, key: req.headers['idempotency-key'] as string | undefined, body });
        this.handle(req, res, body);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const json = (status: number, body: unknown) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};
const problem = (status: number, code: string, headers: Record<string, string> = {}) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/problem+json; charset=utf-8', ...headers }).end(JSON.stringify({ type: `urn:twopc:problem:${code}`, title: code, status, code, detail: code }));
};
/** The request arrived in full; the connection breaks before any answer. */
const reset = (req: IncomingMessage) => {
  req.socket.destroy();
};
const hang = () => undefined;

describe('CoordinatorClient with several coordinator URLs', () => {
  let dead: string;
  const instances: FakeInstance[] = [];
  const clients: CoordinatorClient[] = [];

  async function instance(handle: Handler): Promise<FakeInstance> {
    const i = await new FakeInstance(handle).start();
    instances.push(i);
    return i;
  }

  function client(urls: string[], options: Partial<CoordinatorClientOptions> = {}): CoordinatorClient {
    const c = new CoordinatorClient({ urls, token: 'tok', timeoutMs: 10_000, retries: 1, ...options });
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    dead = await closedPortUrl();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(instances.splice(0).map((i) => i.stop()));
  });

  it('moves past a URL nobody listens on, for every call (begin included: its request never left)', async () => {
    const live = await instance((req, res) => {
      if (req.url === '/v1/transactions') return json(201, { id: ID, state: 'active', expiresAt: '2030-01-01T00:00:00.000Z' })(req, res);
      if (req.url === `/v1/transactions/${ID}/branches`) return json(201, BRANCH)(req, res);
      if (req.url?.endsWith('/commit')) return json(200, { id: ID, state: 'committed' })(req, res);
      json(200, TX)(req, res);
    });
    const twopc = client([dead, live.url]);
    expect(await twopc.begin()).toMatchObject({ id: ID });
    expect(await twopc.get(ID)).toEqual(TX);
    expect(await twopc.commit(ID)).toMatchObject({ state: 'committed' });
    expect(live.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['POST /v1/transactions', `GET /v1/transactions/${ID}`, `POST /v1/transactions/${ID}/commit`]);
  });

  it('moves past an instance whose transaction owner is unreachable (503 owner-unavailable), without waiting for its Retry-After', async () => {
    const relay = await instance(problem(503, 'owner-unavailable', { 'retry-after': '30' }));
    const owner = await instance((req, res) => (req.method === 'GET' ? json(200, TX)(req, res) : json(200, { id: ID, state: 'committed' })(req, res)));
    const twopc = client([relay.url, owner.url], { retries: 0 });
    expect(await twopc.commit(ID)).toMatchObject({ state: 'committed', phaseTwoPending: false });
    expect(relay.seen).toHaveLength(1);
    expect(owner.seen).toHaveLength(1);
  });

  it('sticks to the instance that answered last', async () => {
    const recovering = await instance(problem(503, 'not-ready'));
    const ready = await instance(json(200, TX));
    const twopc = client([recovering.url, ready.url]);
    expect(await twopc.get(ID)).toEqual(TX);
    expect(await twopc.get(ID)).toEqual(TX);
    expect(recovering.seen).toHaveLength(1);
    expect(ready.seen).toHaveLength(2);
  });

  it('returns any other answer as is: a 409 or a 404 is never asked again elsewhere', async () => {
    const first = await instance((req, res) => (req.method === 'GET' ? problem(404, 'not-found')(req, res) : problem(409, 'state-conflict')(req, res)));
    const second = await instance(json(200, TX));
    const twopc = client([first.url, second.url]);
    await expect(twopc.abort(ID)).rejects.toMatchObject({ code: 'state-conflict' });
    await expect(twopc.get(ID)).rejects.toMatchObject({ code: 'not-found' });
    // A commit's 503 outcome-unknown is the coordinator's answer about the transaction, not about the instance.
    first.handle = problem(503, 'outcome-unknown');
    await expect(twopc.commit(ID)).rejects.toMatchObject({ code: 'outcome-unknown' });
    expect(first.seen).toHaveLength(3);
    expect(second.seen).toEqual([]);
  });

  it('repeats a commit whose connection broke on the next instance (idempotent by id)', async () => {
    const broken = await instance(reset);
    const other = await instance(json(200, { id: ID, state: 'committed' }));
    expect(await client([broken.url, other.url]).commit(ID)).toMatchObject({ state: 'committed' });
    expect(broken.seen).toHaveLength(1);
    expect(other.seen).toHaveLength(1);
  });

  it('says outcome-unknown when a commit may have arrived somewhere and no answer ever came', async () => {
    const broken = await instance(reset);
    await expect(client([broken.url, dead], { retries: 0 }).commit(ID)).rejects.toMatchObject({ code: 'outcome-unknown' });
    // Never sent anywhere: not committed.
    await expect(client([dead], { retries: 0 }).commit(ID)).rejects.toMatchObject({ code: 'coordinator-unavailable' });
  });

  it('never resends an enlist whose connection broke after sending to another instance: only to the same one, under the same key', async () => {
    const broken = await instance(reset);
    const other = await instance(json(201, BRANCH));
    await expect(client([broken.url, other.url]).enlist(ID, ENLIST)).rejects.toMatchObject({ code: 'coordinator-unavailable' });
    expect(other.seen).toEqual([]);
    expect(broken.seen).toHaveLength(2);
    expect(broken.seen[0].key).toMatch(/^[0-9a-f-]{36}$/);
    expect(broken.seen[1].key).toBe(broken.seen[0].key);
  });

  it('never resends a begin whose connection broke after sending to another instance', async () => {
    const broken = await instance(reset);
    const other = await instance(json(201, { id: ID, state: 'active', expiresAt: '2030-01-01T00:00:00.000Z' }));
    await expect(client([broken.url, other.url], { retries: 0 }).begin()).rejects.toMatchObject({ code: 'coordinator-unavailable' });
    expect(broken.seen).toHaveLength(1);
    expect(other.seen).toEqual([]);
  });

  it('moves a begin or an enlist refused before any work (503 not-ready, fenced) to the next instance, under the same key', async () => {
    const fenced = await instance((req, res) => (req.url === '/v1/transactions' ? problem(503, 'fenced')(req, res) : problem(503, 'not-ready')(req, res)));
    const live = await instance((req, res) =>
      req.url === '/v1/transactions' ? json(201, { id: ID, state: 'active', expiresAt: '2030-01-01T00:00:00.000Z' })(req, res) : json(201, BRANCH)(req, res),
    );
    const twopc = client([fenced.url, live.url]);
    expect(await twopc.begin()).toMatchObject({ id: ID });
    // Sticky: the enlist starts at the live instance; send it to the refusing one first again.
    const enlisting = client([fenced.url, live.url]);
    expect(await enlisting.enlist(ID, ENLIST)).toEqual(BRANCH);
    expect(fenced.seen.map((s) => s.key)).toEqual([live.seen[0].key, live.seen[1].key]);
    expect(live.seen[1].body).toBe(JSON.stringify(ENLIST));
  });

  it('keeps an enlist that got 503 owner-unavailable on that instance (the owner may have registered it), and does not wait past the deadline', async () => {
    let retryAfter: string | undefined;
    const relay = await instance((req, res) => problem(503, 'owner-unavailable', retryAfter ? { 'retry-after': retryAfter } : {})(req, res));
    const other = await instance(json(201, BRANCH));
    await expect(client([relay.url, other.url]).enlist(ID, ENLIST)).rejects.toMatchObject({ code: 'owner-unavailable' });
    expect(relay.seen).toHaveLength(2);
    expect(relay.seen[1].key).toBe(relay.seen[0].key);
    // A Retry-After beyond the call's deadline: the call ends at once with the answer.
    retryAfter = '3600';
    await expect(client([relay.url, other.url]).enlist(ID, ENLIST)).rejects.toMatchObject({ code: 'owner-unavailable' });
    expect(relay.seen).toHaveLength(3);
    expect(other.seen).toEqual([]);
  });

  it('leaves an instance that hangs after attemptTimeoutMs for the next one (a read)', async () => {
    const paused = await instance(hang);
    const live = await instance(json(200, TX));
    expect(await client([paused.url, live.url], { attemptTimeoutMs: 200 }).get(ID)).toEqual(TX);
    expect(paused.seen).toHaveLength(1);
  });

  it('validates its URLs, naming the field', () => {
    const field = (options: CoordinatorClientOptions) => {
      try {
        new CoordinatorClient(options);
      } catch (e) {
        expect(e).toMatchObject({ code: 'invalid-config' });
        return (e as { details: { field: string } }).details.field;
      }
      return undefined;
    };
    expect(field({})).toBe('url');
    expect(field({ url: 'http://a', urls: ['http://b'] })).toBe('urls');
    expect(field({ urls: [] })).toBe('urls');
    expect(field({ urls: ['http://a', 'nope'] })).toBe('urls.1');
    expect(field({ urls: ['http://a:7070/', 'http://a:7070'] })).toBe('urls.1');
    expect(() => new CoordinatorClient({ urls: [] })).toThrow(/urls must list at least one URL/);
    expect(() => new CoordinatorClient({ url: 'http://a', urls: ['http://b'] })).toThrow(/urls cannot be given with url/);
  });
});

describe('failover rules', () => {
  const answer = (status: number, code?: string): Attempt => {
    const a: Answer = code ? { status, problem: true, body: { code } } : { status, problem: false, body: undefined };
    return { kind: 'answer', answer: a };
  };
  const cases: Array<[string, Attempt, 'by-id' | 'keyed', string]> = [
    ['refused', { kind: 'not-sent', error: new Error() }, 'keyed', 'next-url'],
    ['refused', { kind: 'not-sent', error: new Error() }, 'by-id', 'next-url'],
    ['lost', { kind: 'lost', error: new Error() }, 'by-id', 'next-url'],
    ['lost', { kind: 'lost', error: new Error() }, 'keyed', 'same-url'],
    ['503 not-ready', answer(503, 'not-ready'), 'keyed', 'next-url'],
    ['503 shutting-down', answer(503, 'shutting-down'), 'keyed', 'next-url'],
    ['503 fenced', answer(503, 'fenced'), 'keyed', 'next-url'],
    ['503 owner-unavailable', answer(503, 'owner-unavailable'), 'keyed', 'same-url'],
    ['503 owner-unavailable', answer(503, 'owner-unavailable'), 'by-id', 'next-url'],
    ['503 log-unavailable', answer(503, 'log-unavailable'), 'keyed', 'same-url'],
    ['503, not a problem', answer(503), 'keyed', 'same-url'],
    ['503, not a problem', answer(503), 'by-id', 'next-url'],
    ['502', answer(502), 'by-id', 'next-url'],
    ['504', answer(504), 'keyed', 'same-url'],
    ['503 outcome-unknown', answer(503, 'outcome-unknown'), 'by-id', 'done'],
    ['409', answer(409, 'state-conflict'), 'by-id', 'done'],
    ['404', answer(404, 'not-found'), 'by-id', 'done'],
    ['500', answer(500), 'by-id', 'done'],
    ['201', answer(201), 'keyed', 'done'],
  ];
  for (const [what, attempt, kind, expected] of cases) {
    it(`${what}, ${kind} call: ${expected}`, () => expect(nextStep(kind, attempt)).toBe(expected));
  }
});
