import fc from 'fast-check';
import { METHODS } from 'node:http';
import { Agent, Dispatcher, request } from 'undici';
import { PgCluster } from '../../harness/pg-cluster';
import { freePort } from '../../coordinator/demo/free-port';
import { API_TOKEN, SECRET, startTestService, TestService } from './service-fixture';
import { TestParticipant } from './test-participant';
import { accountsTableSql } from '../../harness/bank';
import { ContractCheck } from '../support/contract-check';

/**
 * SPEC §5: "No input produces a 500 or a crash." Thousands of random and
 * malformed requests against a running coordinator (with a real PostgreSQL
 * database configured for recovery and sweeps, and an in-test participant
 * service): no 5xx, every /v1 error a problem document, every answer to a
 * documented operation as its /openapi.json says, the service healthy
 * afterwards, and the database untouched.
 */

const RUNS = Number(process.env.TWOPC_FUZZ_RUNS ?? 2500);
const SEED = Number(process.env.TWOPC_FUZZ_SEED ?? 20261121);

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

const HOSTILE = [
  "'; drop table accounts; --",
  "twopc_0190a0b0c0d0e0f00112233445566778_1' or '1'='1",
  'twopc_0190a0b0c0d0e0f00112233445566778_1; commit prepared \'x\'',
  "x'); rollback prepared 'twopc_",
  '"quoted"',
  '../../etc/passwd',
  '%00',
  '%',
  '%zz',
  '%2e%2e%2f',
  '__proto__',
  'constructor',
  '\u0000',
  '💥',
  'a'.repeat(5000),
];

const deep = (open: string, close: string, n: number) => open.repeat(n) + close.repeat(n);
const deepObject = (n: number) => `{"metadata":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`;

describe('fuzz: random and malformed requests', () => {
  let cluster: PgCluster;
  let db: string;
  let svc: TestService;
  let tp: TestParticipant;
  let deadUrl: string;
  let contract: ContractCheck;
  const ids: string[] = [];

  const checksum = () =>
    cluster.withClient(async (c) => (await c.query<{ sum: string }>(`select md5(string_agg(id || ':' || balance, ',' order by id)) as sum from accounts`)).rows[0].sum, 'fuzzdb');

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'fuzz' });
    db = await cluster.createDatabase('fuzzdb');
    await cluster.withClient(async (c) => {
      await c.query(accountsTableSql({ balance: 'int' }));
      await c.query('insert into accounts select g, 100 from generate_series(1, 20) g');
    }, 'fuzzdb');
    tp = await new TestParticipant(SECRET).start();
    deadUrl = `http://127.0.0.1:${await freePort()}/gone`;
    svc = await startTestService(
      { databases: { fuzzdb: db }, participantUrlAllowList: [tp.url, deadUrl] },
      { sweepIntervalMs: 200, sweepGraceMs: 0, commitWaitMs: 100, phaseTwoMaxDelayMs: 500, defaultTimeoutMs: 5_000 },
    );
    contract = await ContractCheck.of(svc.base);
    for (let i = 0; i < 10; i += 1) {
      const id = (await svc.call('POST', '/v1/transactions')).body.id;
      if (i % 2 === 0) await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'p', url: tp.url });
      // Some already aborted, so commits and enlistments meet state conflicts.
      if (i % 3 === 0) await svc.call('POST', `/v1/transactions/${id}/abort`);
      ids.push(id);
    }
  });

  afterAll(async () => {
    await svc?.close();
    await tp?.stop();
    await cluster?.destroy();
  });

  it(`${RUNS} requests: no 5xx, problems everywhere, healthy afterwards, database untouched`, async () => {
    const before = await checksum();
    const agent = new Agent({ connections: 8 });

    const id = fc.oneof(
      { weight: 4, arbitrary: fc.nat().map((n) => ids[n % ids.length]) },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 2, arbitrary: fc.constantFrom(...HOSTILE) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    );
    const participant = fc.oneof(fc.constantFrom('p', 'ledger-a', 'fuzzdb', ...HOSTILE), fc.string({ maxLength: 70 }));
    const url = fc.oneof(
      { weight: 3, arbitrary: fc.constant(null).map(() => tp.url) },
      { weight: 1, arbitrary: fc.constant(null).map(() => deadUrl) },
      { weight: 1, arbitrary: fc.constant(null).map(() => `${svc.base}/v1/transactions`) },
      { weight: 1, arbitrary: fc.webUrl() },
      { weight: 1, arbitrary: fc.constantFrom('javascript:alert(1)', 'file:///etc/passwd', 'http://169.254.169.254/latest/meta-data', 'gopher://x', 'http://[::1]:1/', ...HOSTILE) },
    );
    const jsonBody = fc.oneof(
      fc.record({ timeoutMs: fc.oneof(fc.integer({ min: -5, max: 200_000 }), fc.double(), fc.string()), metadata: fc.jsonValue({ maxDepth: 4 }) }, { requiredKeys: [] }),
      fc.record({ participant, url }, { requiredKeys: [] }),
      fc.record({ reason: fc.oneof(fc.string({ maxLength: 50 }), fc.jsonValue()) }, { requiredKeys: [] }),
      fc.jsonValue({ maxDepth: 5 }),
      fc.object({ maxDepth: 3 }),
    ).map((v) => JSON.stringify(v) ?? 'null');
    const body: fc.Arbitrary<string | Buffer | undefined> = fc.oneof(
      { weight: 6, arbitrary: jsonBody },
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
      { weight: 1, arbitrary: fc.integer({ min: 10, max: 120_000 }).map((n) => deep('[', ']', n)) },
      { weight: 1, arbitrary: fc.integer({ min: 5, max: 3_000 }).map(deepObject) },
      { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 200_000 }).map((n) => JSON.stringify({ metadata: { blob: 'x'.repeat(n) } })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }).map((a) => Buffer.from(a)) },
      { weight: 1, arbitrary: fc.constantFrom('{"timeoutMs": ', '{"a":1}{"b":2}', '\ufeff{}', 'null', '[]', '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"x":1}}}') },
    );
    const path = fc.oneof(
      { weight: 3, arbitrary: fc.constant('/v1/transactions') },
      { weight: 3, arbitrary: id.map((i) => `/v1/transactions/${encodePath(i)}`) },
      { weight: 3, arbitrary: id.map((i) => `/v1/transactions/${encodePath(i)}/branches`) },
      { weight: 3, arbitrary: id.map((i) => `/v1/transactions/${encodePath(i)}/commit`) },
      { weight: 3, arbitrary: id.map((i) => `/v1/transactions/${encodePath(i)}/abort`) },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('state', 'limit', 'sort', '__proto__', 'state[]'), fc.oneof(fc.constantFrom('active', 'in-doubt', 'heuristic', 'completed', '0', '1001', '-1', '1e3', '10'), fc.string({ maxLength: 10 }))).map(([k, v]) => `/v1/transactions?${k}=${encodeURIComponent(v)}&${k}=${encodeURIComponent(v)}`) },
      { weight: 1, arbitrary: fc.constantFrom('/healthz', '/readyz', '/metrics', '/openapi.json', '/', '/v1', '/v1/', '/v2/transactions', '/v1/transactions/', '//v1//transactions', '/v1/transactions/%', '/v1/transactions/%E0%A4%A', '/v1/transactions/..%2f..%2fhealthz') },
      { weight: 1, arbitrary: fc.webPath().map((p) => p || '/') },
    );
    const method = fc.oneof({ weight: 6, arbitrary: fc.constant('POST') }, { weight: 3, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'FOO', 'PROPFIND') });
    const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,300}$/).map((s) => s.trim());
    const headers = fc.record(
      {
        authorization: fc.oneof({ weight: 8, arbitrary: fc.constant(`Bearer ${API_TOKEN}`) }, { weight: 1, arbitrary: headerValue }, { weight: 1, arbitrary: fc.constantFrom('Bearer', `bearer ${API_TOKEN}`, `Bearer  ${API_TOKEN} `, `Bearer ${API_TOKEN}x`, 'Basic Zm9vOmJhcg==') }),
        'content-type': fc.oneof({ weight: 6, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: headerValue }, { weight: 2, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/merge-patch+json', 'application/json; charset=utf-16', '*/*') }),
        'idempotency-key': fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), headerValue, fc.uuid()),
        'content-encoding': fc.constantFrom('gzip', 'br', 'identity', 'deflate, gzip', 'x'),
        accept: headerValue,
      },
      { requiredKeys: [] },
    );
    const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.record({ method, path, headers, body }).map((r) => (r.method === 'HEAD' || r.method === 'GET' ? { ...r, body: undefined } : r));

    let sent = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        let res;
        try {
          res = await request(`${svc.base}${r.path}`, { method: r.method as Dispatcher.HttpMethod, headers: r.headers, body: r.body, dispatcher: agent, headersTimeout: 15_000, bodyTimeout: 15_000 });
        } catch (e) {
          // The client refused to send it (an invalid header or path for undici): not a request the service saw.
          if ((e as { code?: string }).code === 'UND_ERR_INVALID_ARG') return;
          throw e;
        }
        const text = await res.body.text();
        sent += 1;
        const contentType = res.headers['content-type'];
        contract.record({ method: r.method, target: r.path, status: res.statusCode, ...(typeof contentType === 'string' ? { contentType } : {}), body: text });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode >= 500) throw new Error(`${r.method} ${r.path.slice(0, 100)} → ${res.statusCode} ${text.slice(0, 300)}`);
        // Node's HTTP parser itself answers a bare 400 to methods it does not know, before any app code.
        if (r.path.startsWith('/v1') && res.statusCode >= 400 && r.method !== 'HEAD' && METHODS.includes(r.method)) {
          expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
          expect(JSON.parse(text)).toMatchObject({ status: res.statusCode, code: expect.any(String), type: expect.stringMatching(/^urn:twopc:problem:/) });
        }
        if (res.statusCode === 201 && r.path === '/v1/transactions') ids.push(JSON.parse(text).id);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    await agent.close();
    expect(sent).toBeGreaterThanOrEqual(2000);
    // Something of everything was exercised.
    for (const status of [200, 201, 400, 401, 404, 405, 409, 413, 415]) expect([status, (statuses.get(status) ?? 0) > 0]).toEqual([status, true]);
    // Every answer to an operation the document describes is as it says.
    contract.assertHeld({ minChecked: Math.floor(RUNS / 4) });

    // Healthy afterwards: probes, and a normal transaction end to end.
    expect((await svc.call('GET', '/healthz')).status).toBe(200);
    expect((await svc.call('GET', '/readyz')).status).toBe(200);
    const txId = (await svc.call('POST', '/v1/transactions')).body.id;
    await svc.call('POST', `/v1/transactions/${txId}/branches`, { participant: 'a', url: tp.url });
    await svc.call('POST', `/v1/transactions/${txId}/branches`, { participant: 'b', url: tp.url });
    expect((await svc.call('POST', `/v1/transactions/${txId}/commit`)).body).toMatchObject({ state: 'committed' });

    // The database saw sweeps only: nothing prepared, no row changed, no marker written.
    await cluster.assertNoPrepared('twopc');
    expect(await checksum()).toBe(before);
    const markers = await cluster.withClient(async (c) => (await c.query<{ n: string }>(`select count(*) as n from twopc_marker`)).rows[0].n, 'fuzzdb');
    expect(markers).toBe('0');
  });
});

/** Path segments: most percent-encoded, some raw (quotes, semicolons and `%` are legal in a request target). */
function encodePath(segment: string): string {
  return /^[\x21-\x7e]*$/.test(segment) && !segment.includes('/') && !segment.includes('?') && !segment.includes('#') ? segment : encodeURIComponent(segment);
}
