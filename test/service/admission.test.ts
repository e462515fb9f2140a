import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadServiceConfig } from '../../coordinator/assembly/service-config';
import { admitted, AdmissionQueue, isTransactionRequest } from '../../coordinator/service/admission';

/**
 * Issue 16: fair admission of transaction requests (service/admission.ts).
 * The turns are run by hand (an injected `defer`), so every assertion is on
 * order and counts, never on time.
 */
function manualTurns(): { defer: (fn: () => void) => void; run: () => number } {
  const pending: Array<() => void> = [];
  return {
    defer: (fn) => void pending.push(fn),
    // Runs the turns scheduled so far (not those they schedule): one event-loop turn.
    run: () => {
      const now = pending.splice(0);
      for (const fn of now) fn();
      return now.length;
    },
  };
}

describe('AdmissionQueue', () => {
  it('starts at once while there is room, then queues, and starts the queued in arrival order as slots free', () => {
    const turns = manualTurns();
    const q = new AdmissionQueue({ maxInProgress: 2, maxQueued: 10, slice: 100 }, turns.defer);
    const started: number[] = [];
    const handles = [1, 2, 3, 4, 5].map((n) => q.admit(() => started.push(n)));
    expect(handles.map((h) => h.admitted)).toEqual(['started', 'started', 'queued', 'queued', 'queued']);
    expect(started).toEqual([1, 2]);
    turns.run();
    // No slot freed: nothing more starts, however many turns pass.
    expect(started).toEqual([1, 2]);
    handles[1].release();
    turns.run();
    expect(started).toEqual([1, 2, 3]);
    handles[0].release();
    handles[2].release();
    turns.run();
    expect(started).toEqual([1, 2, 3, 4, 5]);
    expect(q.running).toBe(2);
    expect(q.queued).toBe(0);
  });

  it('tells its listener as each request starts, queued ones when their turn comes', () => {
    const turns = manualTurns();
    const q = new AdmissionQueue({ maxInProgress: 1, maxQueued: 10, slice: 100 }, turns.defer);
    const events: string[] = [];
    q.onStart = () => events.push('start');
    const a = q.admit(() => events.push('a'));
    q.admit(() => events.push('b'));
    expect(events).toEqual(['start', 'a']);
    a.release();
    turns.run();
    expect(events).toEqual(['start', 'a', 'start', 'b']);
  });

  it('never lets a newcomer overtake a waiting request, even when a slot is free', () => {
    const turns = manualTurns();
    const q = new AdmissionQueue({ maxInProgress: 1, maxQueued: 10, slice: 100 }, turns.defer);
    const started: string[] = [];
    const a = q.admit(() => started.push('a'));
    q.admit(() => started.push('b'));
    a.release();
    // A slot is free and b waits: c queues behind b.
    expect(q.admit(() => started.push('c')).admitted).toBe('queued');
    turns.run();
    expect(started).toEqual(['a', 'b']);
  });

  it('starts at most `slice` requests per turn, the next slice on the next turn', () => {
    const turns = manualTurns();
    const q = new AdmissionQueue({ maxInProgress: 100, maxQueued: 100, slice: 3 }, turns.defer);
    const started: number[] = [];
    const admitted = Array.from({ length: 8 }, (_, n) => q.admit(() => started.push(n)).admitted);
    // The first slice starts at once; the rest wait for later turns.
    expect(admitted).toEqual(['started', 'started', 'started', 'queued', 'queued', 'queued', 'queued', 'queued']);
    turns.run();
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    turns.run();
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(turns.run()).toBe(1);
    expect(turns.run()).toBe(0);
  });

  it('refuses past maxQueued, and a refused request holds nothing', () => {
    const turns = manualTurns();
    const q = new AdmissionQueue({ maxInProgress: 1, maxQueued: 2, slice: 10 }, turns.defer);
    const started: number[] = [];
    const handles = [0, 1, 2, 3].map((n) => q.admit(() => started.push(n)));
    expect(handles.map((h) => h.admitted)).toEqual(['started', 'queued', 'queued', 'refused']);
    handles[3].release();
    expect(q.running).toBe(1);
    expect(q.queued).toBe(2);
  });

  it('skips a request whose client went away before its turn, and releases a slot only once', () => {
    const turns = manualTurns();
    const q = new AdmissionQueue({ maxInProgress: 1, maxQueued: 10, slice: 10 }, turns.defer);
    const started: string[] = [];
    const a = q.admit(() => started.push('a'));
    const b = q.admit(() => started.push('b'));
    q.admit(() => started.push('c'));
    b.release();
    a.release();
    a.release();
    turns.run();
    expect(started).toEqual(['a', 'c']);
    expect(q.running).toBe(1);
  });

  it('names the setting that is out of range', () => {
    expect(() => new AdmissionQueue({ maxInProgress: 0, maxQueued: 1, slice: 1 })).toThrow('admission.maxInProgress must be an integer >= 1');
    expect(() => new AdmissionQueue({ maxInProgress: 1, maxQueued: 1, slice: 1.5 })).toThrow('admission.slice must be an integer >= 1');
  });

  it('queues the transaction API only: health, readiness, metrics, the admin API and the console never wait', () => {
    expect(['/v1/transactions', '/v1/transactions/x/commit', '/v1/transactions?state=x'].every(isTransactionRequest)).toBe(true);
    expect(['/healthz', '/readyz', '/metrics', '/v1/admin/recover', '/ui/', '/openapi.json'].some(isTransactionRequest)).toBe(false);
  });

  it('is configured by http.* and TWOPC_* settings, with defaults', () => {
    const byDefault = loadServiceConfig({ env: {} }).http;
    expect([byDefault.maxRequestsInProgress, byDefault.maxQueuedRequests, byDefault.requestsPerTurn]).toEqual([128, 10_000, 4]);
    const set = loadServiceConfig({ env: { TWOPC_MAX_REQUESTS_IN_PROGRESS: '64', TWOPC_MAX_QUEUED_REQUESTS: '5000', TWOPC_REQUESTS_PER_TURN: '8' } }).http;
    expect([set.maxRequestsInProgress, set.maxQueuedRequests, set.requestsPerTurn]).toEqual([64, 5000, 8]);
    expect(() => loadServiceConfig({ env: { TWOPC_REQUESTS_PER_TURN: '0' } })).toThrow(/http.requestsPerTurn must be >= 1/);
  });
});

describe('admitted (the server listener)', () => {
  /** A server whose transaction requests are held until `finish` is called; the rest answered at once. */
  async function heldServer(q: AdmissionQueue): Promise<{ url: string; held: http.ServerResponse[]; close(): Promise<void> }> {
    const held: http.ServerResponse[] = [];
    const app: http.RequestListener = (req, res) => {
      if (isTransactionRequest(req.url)) held.push(res);
      else res.end('ok');
    };
    const server = http.createServer(admitted(app, q));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { url, held, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
  }

  it('answers 503 over-capacity with Retry-After past the queue, lets /healthz and /metrics through, and frees the slot when an answer is sent', async () => {
    const q = new AdmissionQueue({ maxInProgress: 1, maxQueued: 1, slice: 10 });
    const srv = await heldServer(q);
    try {
      const first = fetch(`${srv.url}/v1/transactions`, { method: 'POST' });
      await until(() => srv.held.length === 1);
      const second = fetch(`${srv.url}/v1/transactions`, { method: 'POST' });
      await until(() => q.queued === 1);
      const third = await fetch(`${srv.url}/v1/transactions`, { method: 'POST' });
      expect(third.status).toBe(503);
      expect(third.headers.get('retry-after')).toBe('1');
      expect(await third.json()).toMatchObject({ code: 'over-capacity', limit: 'maxQueuedRequests' });
      expect(await (await fetch(`${srv.url}/healthz`)).text()).toBe('ok');
      expect(await (await fetch(`${srv.url}/metrics`)).text()).toBe('ok');
      srv.held[0].end('one');
      expect(await (await first).text()).toBe('one');
      await until(() => srv.held.length === 2);
      srv.held[1].end('two');
      expect(await (await second).text()).toBe('two');
      await until(() => q.running === 0);
    } finally {
      await srv.close();
    }
  });
});

/** Waits for a condition driven by sockets (no time bound of its own: jest's timeout ends a hang). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
