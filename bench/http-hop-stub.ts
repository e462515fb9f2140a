/**
 * A stand-in for `twopc serve` (ROLE=coordinator) or for a participant
 * service (ROLE=service) that makes and answers the same HTTP exchanges as
 * the real ones, with the same libraries (express, express.json, undici
 * keep-alive pools), and does nothing else: no database, no log, no auth,
 * no validation. The `http-hops` what-if mode runs one coordinator stub and
 * two service stubs to price the `http` mode's ten exchanges per transfer.
 *
 *   coordinator: POST /v1/transactions → 201; POST /v1/transactions/:id/branches → 201;
 *                POST /v1/transactions/:id/commit → /twopc/prepare on every service, then /twopc/commit → 200
 *   service:     POST /transfer → POST {COORDINATOR_URL}/v1/transactions/:id/branches → 204;
 *                POST /twopc/prepare, /twopc/commit → 200
 *
 * With FLOW=carried (the `http-carried-hops` what-if modes: carried
 * registration, docs/protocol.md), there is no begin and no enlist:
 *
 *   coordinator: POST /v1/transactions/:id/commit {registrations} → prepare on each registration's URL, then commit → 200
 *   service:     POST /transfer → 200 {registration}; POST /twopc/prepare, /twopc/commit, /twopc/batch → 200
 *
 * With BATCH=1 the coordinator sends its calls through HopBatcher (the real
 * coordinator's batching rule); without it, every call goes alone.
 *
 * Each answers GET /bench/served, the count of requests it served (--profile).
 *
 * Env: ROLE, PORT, FLOW, BATCH, COORDINATOR_URL (service), SERVICE_URLS (coordinator, comma-separated).
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import { Pool } from 'undici';
import { HopBatcher } from './hop-batcher';
import type { HopCall } from './hop-batcher';
import { countServed } from './profile/served-counter';

const env = process.env;
const port = Number(env.PORT);
const carried = env.FLOW === 'carried';
const app = express();
app.disable('etag');
countServed(app);

async function post(pool: Pool, path: string, body: unknown): Promise<void> {
  const res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${path} answered ${res.statusCode}`);
}

if (env.ROLE === 'coordinator') {
  const urls = String(env.SERVICE_URLS).split(',');
  const pools = new Map(urls.map((url) => [url, new Pool(url, { connections: 32 })]));
  const batchers = new Map([...pools].map(([url, pool]) => [url, new HopBatcher(pool)]));
  const send = (url: string, call: HopCall): Promise<void> =>
    env.BATCH === '1' ? (batchers.get(url) as HopBatcher).call(call) : post(pools.get(url) as Pool, call.path, call.body);
  app.post('/v1/transactions', express.json(), (_req, res) => void res.status(201).json({ id: randomUUID(), state: 'active' }));
  app.post('/v1/transactions/:id/branches', express.json(), (req, res) => void res.status(201).json({ branchId: 1, gid: `stub_${req.params.id}` }));
  app.post('/v1/transactions/:id/commit', express.json(), async (req, res) => {
    try {
      const body = req.body as { registrations?: { url: string; gid: string; branchId: number }[] };
      const branches = carried
        ? (body.registrations ?? []).map((r) => ({ url: r.url, call: { txId: req.params.id, branchId: r.branchId, gid: r.gid } }))
        : urls.map((url) => ({ url, call: { txId: req.params.id, branchId: 1, gid: `stub_${req.params.id}` } }));
      await Promise.all(branches.map((b) => send(b.url, { path: '/twopc/prepare', body: b.call })));
      await Promise.all(branches.map((b) => send(b.url, { path: '/twopc/commit', body: b.call })));
      res.status(200).json({ id: req.params.id, state: 'committed' });
    } catch (e) {
      res.status(503).json({ error: String(e) });
    }
  });
} else {
  const coordinator = new Pool(String(env.COORDINATOR_URL), { connections: 32 });
  const self = `http://127.0.0.1:${port}`;
  app.post('/transfer', express.json(), async (req, res) => {
    const txId = String(req.headers['twopc-transaction']);
    try {
      if (carried) {
        res.status(200).json({ registration: { participant: 'stub', url: self, branchId: 1, gid: `stub_${txId}`, sig: 'unsigned' } });
        return;
      }
      await post(coordinator, `/v1/transactions/${txId}/branches`, { participant: 'stub', url: `${self}/twopc` });
      res.status(204).end();
    } catch (e) {
      res.status(503).json({ error: String(e) });
    }
  });
  app.post('/twopc/prepare', express.json(), (_req, res) => void res.status(200).json({ vote: 'yes' }));
  app.post('/twopc/commit', express.json(), (_req, res) => void res.status(200).json({ state: 'committed' }));
  app.post('/twopc/batch', express.json(), (req, res) => {
    const calls = (req.body as { calls: { op: string }[] }).calls;
    res.status(200).json({ results: calls.map((c) => ({ status: 200, body: c.op === 'prepare' ? { vote: 'yes' } : { state: 'committed' } })) });
  });
}

const server = app.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ ready: true, role: env.ROLE, port })}\n`));
const stop = () => {
  server.close();
  server.closeIdleConnections();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
