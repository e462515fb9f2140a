import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { trace } from '@opentelemetry/api';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { PgCluster } from '../../harness/pg-cluster';
import { CoordinatorClient, withTraceparent, withTransaction } from '../../participant-sdk/src';
import { records, startTracing, type SpanRecord } from './span-recorder';

// Issue 15 item 3: one global transaction is one trace, across the client (this process), the
// coordinator (twopc serve) and two participant services, each process with the in-memory
// exporter of @opentelemetry/sdk-trace-base; the spans link up as the protocol runs.
const ROOT = path.resolve(__dirname, '../..');
const API_TOKEN = 'tracing-api-token-0123456789';
const SECRET = 'tracing-participant-secret-0123456789';

let tmp: string;
let exporter: InMemorySpanExporter;
let cluster: PgCluster;
const children: { name: string; child: ChildProcess }[] = [];

// A TypeScript entry point in a child node process that traces and writes its spans at exit.
async function startTraced(name: string, args: string[], env: Record<string, string>, ready: RegExp): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', path.join(__dirname, 'dump-spans-at-exit.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env, TWOPC_SPANS_FILE: path.join(tmp, `${name}.json`), TWOPC_SPANS_PROCESS: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push({ name, child });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 90_000;
  for (;;) {
    const m = ready.exec(output);
    if (m) return m[1];
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopAll(): Promise<SpanRecord[]> {
  const spans: SpanRecord[] = [];
  for (const { name, child } of children.splice(0)) {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    const file = path.join(tmp, `${name}.json`);
    if (fs.existsSync(file)) spans.push(...(JSON.parse(fs.readFileSync(file, 'utf8')) as SpanRecord[]));
  }
  return spans;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-tracing-'));
  exporter = startTracing();
  cluster = await PgCluster.start({ name: 'tracing', maxPreparedTransactions: 40 });
}, 120_000);

afterAll(async () => {
  await stopAll();
  await cluster?.destroy();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('one trace per global transaction', () => {
  it('joins the client, the coordinator and two services in one trace, each step a child of the step that caused it', async () => {
    const port = await startTraced('coordinator', ['coordinator/cli/main.ts', 'serve'], { TWOPC_PORT: '0', TWOPC_DATA_DIR: path.join(tmp, 'data'), TWOPC_API_TOKEN: API_TOKEN, TWOPC_PARTICIPANT_SECRET: SECRET }, /"port":(\d+).*"twopc coordinator ready"/);
    const coordinatorUrl = `http://127.0.0.1:${port}`;
    const services: string[] = [];
    for (const name of ['ledger_a', 'ledger_b']) {
      const env = { SERVICE_NAME: name, DB_URL: await cluster.createDatabase(name), TWOPC_URL: coordinatorUrl, TWOPC_API_TOKEN: API_TOKEN, TWOPC_PARTICIPANT_SECRET: SECRET };
      services.push(await startTraced(name, ['test/tracing/traced-service.ts'], env, /"ready":true,"url":"([^"]+)"/));
    }

    // The client: its transaction inside one span of its own, as the README shows.
    const twopc = new CoordinatorClient({ url: coordinatorUrl, token: API_TOKEN });
    const placeOrder = (name: string): Promise<string> =>
      trace.getTracer('shop').startActiveSpan(name, async (span) => {
        const { id } = await twopc.begin();
        for (const service of services) {
          await fetch(`${service}/entries`, { method: 'POST', headers: withTraceparent(withTransaction(id, { 'content-type': 'application/json' })), body: JSON.stringify({ amount: 5 }) });
        }
        await twopc.commit(id); // every service's branch committed, or TransactionAbortedError
        span.end();
        return id;
      });
    const txId = await placeOrder('place-order');
    // Concurrent ones, whose calls to a service the coordinator batches: each batched call carries its own parent.
    const concurrent = await Promise.all(Array.from({ length: 8 }, (_, i) => placeOrder(`concurrent-order-${i}`)));
    await twopc.close();
    await cluster.assertNoPrepared('twopc');
    for (const name of ['ledger_a', 'ledger_b']) expect(await cluster.withClient(async (c) => (await c.query('select count(*)::int as n from ledger')).rows[0].n, name)).toBe(9);

    const spans = [...records(exporter, 'client'), ...(await stopAll())];
    const root = spans.find((s) => s.name === 'place-order')!;
    const ofTx = spans.filter((s) => s.traceId === root.traceId);
    // Every span that names this transaction is in the trace (recovery at the coordinator's start is a trace of its own).
    expect(spans.filter((s) => s.attributes['twopc.transaction.id'] === txId && s.traceId !== root.traceId)).toEqual([]);
    const one = (process: string, name: string, where: (s: SpanRecord) => boolean = () => true): SpanRecord => {
      const found = ofTx.filter((s) => s.process === process && s.name === name && where(s));
      if (found.length !== 1) throw new Error(`expected one ${name} in ${process}, found ${found.length}: ${JSON.stringify(ofTx.map((s) => `${s.process}:${s.name}`))}`);
      return found[0];
    };
    const parentOf = (s: SpanRecord) => ofTx.find((p) => p.spanId === s.parentSpanId);
    const expectChild = (child: SpanRecord, parent: SpanRecord) => expect(`${child.process}:${child.name} <- ${parentOf(child)?.process}:${parentOf(child)?.name}`).toBe(`${child.process}:${child.name} <- ${parent.process}:${parent.name}`);

    // Client -> coordinator: begin and commit.
    const clientBegin = one('client', 'twopc.client.begin');
    const clientCommit = one('client', 'twopc.client.commit');
    expectChild(clientBegin, root);
    expectChild(clientCommit, root);
    expectChild(one('coordinator', 'twopc.begin'), clientBegin);
    const commit = one('coordinator', 'twopc.commit');
    expectChild(commit, clientCommit);
    expect(commit.attributes).toMatchObject({ 'twopc.transaction.id': txId, 'twopc.outcome': 'committed' });
    const decide = one('coordinator', 'twopc.decide');
    expectChild(decide, commit);
    expect(decide.attributes).toMatchObject({ 'twopc.transaction.id': txId, 'twopc.outcome': 'commit', 'twopc.decision.winner': 'commit' });

    for (const service of ['ledger_a', 'ledger_b']) {
      // Client -> service (the request's traceparent) -> its enlist -> the coordinator's enlist.
      const enlist = one(service, 'twopc.participant.enlist');
      expectChild(enlist, root);
      const clientEnlist = one(service, 'twopc.client.enlist');
      expectChild(clientEnlist, enlist);
      const coordinatorEnlist = one('coordinator', 'twopc.enlist', (s) => s.attributes['twopc.participant'] === service);
      expectChild(coordinatorEnlist, clientEnlist);
      const gid = coordinatorEnlist.attributes['twopc.branch.gid'];
      expect(gid).toMatch(new RegExp(`^twopc_${txId.replace(/-/g, '')}_\\d+$`));

      // Coordinator -> service: the branch's prepare and phase 2, inside the signed calls.
      const prepare = one('coordinator', 'twopc.prepare', (s) => s.attributes['twopc.branch.gid'] === gid);
      expectChild(prepare, commit);
      expect(prepare.attributes).toMatchObject({ 'twopc.transaction.id': txId, 'twopc.participant': service, 'twopc.vote': 'yes' });
      expectChild(one(service, 'twopc.participant.prepare', (s) => s.attributes['twopc.branch.gid'] === gid), prepare);
      const phaseTwo = one('coordinator', 'twopc.phase2.commit', (s) => s.attributes['twopc.branch.gid'] === gid);
      expectChild(phaseTwo, commit);
      expectChild(one(service, 'twopc.participant.commit', (s) => s.attributes['twopc.branch.gid'] === gid), phaseTwo);
    }
    expect(ofTx.filter((s) => s.failed)).toEqual([]);

    for (const [i, id] of concurrent.entries()) {
      const rootOf = spans.find((s) => s.name === `concurrent-order-${i}`)!;
      for (const service of ['ledger_a', 'ledger_b']) {
        const prepare = spans.filter((s) => s.process === 'coordinator' && s.name === 'twopc.prepare' && s.attributes['twopc.transaction.id'] === id && s.attributes['twopc.participant'] === service);
        expect(prepare.map((s) => s.traceId)).toEqual([rootOf.traceId]);
        const served = spans.filter((s) => s.process === service && s.name === 'twopc.participant.prepare' && s.attributes['twopc.branch.gid'] === prepare[0].attributes['twopc.branch.gid']);
        expect(served.map((s) => [s.traceId, s.parentSpanId])).toEqual([[rootOf.traceId, prepare[0].spanId]]);
      }
    }
  }, 300_000);
});
