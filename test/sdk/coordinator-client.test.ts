import type { Server } from 'node:http';
import express, { Response } from 'express';
import { CoordinatorClient, TransactionAbortedError, transactionIdFrom, TwopcError, withTransaction } from '../../participant-sdk/src';
import { closeServer, listen } from './sdk-fixture';

const ID = '01890a5d-ac96-774b-bcce-b302099a8057';

const problem = (res: Response, status: number, code: string, extra: Record<string, unknown> = {}) =>
  void res.status(status).type('application/problem+json; charset=utf-8').send(JSON.stringify({ type: `urn:twopc:problem:${code}`, title: code, status, code, detail: `${code} detail`, ...extra }));

describe('CoordinatorClient', () => {
  let server: Server;
  let client: CoordinatorClient;
  const seen: Array<{ method: string; path: string; auth?: string; key?: string; body: unknown }> = [];
  /** Per path: answers to give, in order (the last one repeats). */
  const script = new Map<string, Array<(res: Response) => void>>();

  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.all('/{*rest}', (req, res) => {
      seen.push({ method: req.method, path: req.path, auth: req.headers.authorization, key: req.header('idempotency-key'), body: req.body });
      const answers = script.get(`${req.method} ${req.path}`) ?? [];
      const answer = answers.length > 1 ? answers.shift() : answers[0];
      if (answer) answer(res);
      else res.status(404).type('text/html').send('<h1>nope</h1>');
    });
    let url: string;
    ({ server, url } = await listen(app));
    client = new CoordinatorClient({ url: `${url}/`, token: 'tok', timeoutMs: 2_000 });
  });

  afterAll(async () => {
    await client.close();
    await closeServer(server);
  });

  beforeEach(() => {
    seen.length = 0;
    script.clear();
  });

  it('begins with the bearer token and retries a 503 under the same Idempotency-Key', async () => {
    script.set('POST /v1/transactions', [
      (res) => problem(res, 503, 'not-ready'),
      (res) => void res.status(201).json({ id: ID, state: 'active', expiresAt: '2030-01-01T00:00:00.000Z' }),
    ]);
    expect(await client.begin({ timeoutMs: 5_000, metadata: { order: 1 } })).toEqual({ id: ID, state: 'active', expiresAt: '2030-01-01T00:00:00.000Z' });
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ auth: 'Bearer tok', body: { timeoutMs: 5_000, metadata: { order: 1 } } });
    expect(seen[0].key).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1].key).toBe(seen[0].key);
  });

  it('commits: 200, and 202 as phase two pending', async () => {
    script.set(`POST /v1/transactions/${ID}/commit`, [
      (res) => void res.status(200).json({ id: ID, state: 'committed', phaseTwoPending: false }),
      (res) => void res.status(202).json({ id: ID, state: 'committed', phaseTwoPending: true }),
    ]);
    expect(await client.commit(ID)).toEqual({ id: ID, state: 'committed', phaseTwoPending: false });
    expect(await client.commit(ID)).toEqual({ id: ID, state: 'committed', phaseTwoPending: true });
  });

  it('throws TransactionAbortedError with the coordinator\'s reason when the commit ended in abort', async () => {
    const reason = { cause: 'vote-no', message: 'out of stock', branchId: 2, participant: 'orders' };
    script.set(`POST /v1/transactions/${ID}/commit`, [(res) => problem(res, 409, 'transaction-aborted', { state: 'aborted', reason })]);
    const error = await client.commit(ID).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionAbortedError);
    expect((error as TransactionAbortedError).reason).toMatchObject(reason);
    expect((error as TransactionAbortedError).txId).toBe(ID);

    script.set(`POST /v1/transactions/${ID}/commit`, [(res) => void res.status(409).json({ state: 'aborted', reason: 'timed out' })]);
    expect(await client.commit(ID).catch((e: unknown) => e)).toMatchObject({ code: 'transaction-aborted', reason: { message: 'timed out' } });
  });

  it('does not repeat a commit answered 503 outcome-unknown: that is its outcome, not the instance\'s trouble', async () => {
    script.set(`POST /v1/transactions/${ID}/commit`, [(res) => problem(res, 503, 'outcome-unknown')]);
    await expect(client.commit(ID)).rejects.toMatchObject({ code: 'outcome-unknown' });
    expect(seen).toHaveLength(1);
  });

  it('repeats a commit whose connection broke after sending (idempotent by id), and reports outcome-unknown if no answer ever comes', async () => {
    script.set(`POST /v1/transactions/${ID}/commit`, [(res) => res.socket?.destroy(), (res) => void res.status(200).json({ id: ID, state: 'committed' })]);
    expect(await client.commit(ID)).toMatchObject({ state: 'committed' });
    expect(seen).toHaveLength(2);
    script.set(`POST /v1/transactions/${ID}/commit`, [(res) => res.socket?.destroy()]);
    await expect(client.commit(ID)).rejects.toMatchObject({ code: 'outcome-unknown' });
  });

  it('aborts, and reports a committed transaction as state-conflict', async () => {
    script.set(`POST /v1/transactions/${ID}/abort`, [
      (res) => void res.status(200).json({ id: ID, state: 'aborted' }),
      (res) => problem(res, 409, 'state-conflict'),
    ]);
    expect(await client.abort(ID)).toEqual({ id: ID, state: 'aborted' });
    await expect(client.abort(ID)).rejects.toMatchObject({ code: 'state-conflict', details: { status: 409 } });
  });

  it('gets a transaction; its own 404 is not-found, any other 404 is coordinator-unavailable', async () => {
    const tx = { id: ID, state: 'committed', decision: 'commit', createdAt: 'a', expiresAt: 'b', branches: [] };
    script.set(`GET /v1/transactions/${ID}`, [(res) => void res.json(tx), (res) => problem(res, 404, 'not-found')]);
    expect(await client.get(ID)).toEqual(tx);
    await expect(client.get(ID)).rejects.toMatchObject({ code: 'not-found' });
    script.set(`GET /v1/transactions/${ID}`, [(res) => problem(res, 404, 'route-not-found')]);
    await expect(client.get(ID)).rejects.toMatchObject({ code: 'coordinator-unavailable' });
    script.clear();
    await expect(client.get(ID)).rejects.toMatchObject({ code: 'coordinator-unavailable', details: { status: 404 } });
  });

  it('rejects an answer that does not match the wire contract', async () => {
    script.set(`POST /v1/transactions/${ID}/branches`, [(res) => void res.status(201).json({ branchId: 1, gid: "x'; drop" })]);
    await expect(client.enlist(ID, { participant: 'orders', url: 'http://o/twopc' })).rejects.toMatchObject({ code: 'coordinator-unavailable' });
  });

  it('refuses a malformed id before sending anything', async () => {
    await expect(client.commit('../../admin')).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'id' } });
    expect(seen).toEqual([]);
  });

  it('reports an unreachable coordinator: coordinator-unavailable, or outcome-unknown for a commit', async () => {
    const down = new CoordinatorClient({ url: 'http://127.0.0.1:9', retries: 1 });
    try {
      await expect(down.get(ID)).rejects.toMatchObject({ code: 'coordinator-unavailable' });
      await expect(down.commit(ID)).rejects.toMatchObject({ code: 'coordinator-unavailable' });
    } finally {
      await down.close();
    }
  });

  it('validates its options, naming the field', () => {
    expect(() => new CoordinatorClient({ url: 'nope' })).toThrow(expect.objectContaining({ code: 'invalid-config', details: { field: 'url' } }));
    expect(() => new CoordinatorClient({ url: 'http://x', retries: -1 })).toThrow(/retries/);
  });
});

describe('transaction header helpers', () => {
  it('adds twopc-transaction, replacing any differently-cased copy', () => {
    expect(withTransaction(ID, { 'content-type': 'application/json', 'TWOPC-Transaction': 'old' })).toEqual({ 'content-type': 'application/json', 'twopc-transaction': ID });
    expect(() => withTransaction('nope')).toThrow(TwopcError);
  });

  it('reads and validates it from a request', () => {
    expect(transactionIdFrom({ headers: { 'twopc-transaction': ID } })).toBe(ID);
    expect(transactionIdFrom({ headers: {} })).toBeUndefined();
    for (const bad of ["x'; drop", [ID, ID], ID.toUpperCase()]) {
      expect(() => transactionIdFrom({ headers: { 'twopc-transaction': bad } })).toThrow(expect.objectContaining({ code: 'invalid-input', details: { field: 'twopc-transaction' } }));
    }
  });
});
