import { beginAnswerSchema, enlistAnswerSchema, problemSchema, transactionAnswerSchema } from '../../participant-sdk/src/wire';
import { ADMIN_TOKEN, SECRET, startTestService, TestService, waitFor } from './service-fixture';
import { TestParticipant } from './test-participant';

const UNKNOWN_ID = '01900000-0000-7000-8000-000000000000';

function expectProblem(res: { status: number; body: any; headers: Headers }, status: number, code: string, field?: string): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(problemSchema.safeParse(res.body).success).toBe(true);
  expect(res.body.status).toBe(status);
  expect(res.body.type).toBe(`urn:twopc:problem:${code}`);
  if (field !== undefined) expect(res.body.field).toBe(field);
}

describe('coordinator HTTP API (in-process engine, file log, in-test participant services)', () => {
  let svc: TestService;
  let a: TestParticipant;
  let b: TestParticipant;

  beforeAll(async () => {
    a = await new TestParticipant(SECRET).start();
    b = await new TestParticipant(SECRET).start();
    svc = await startTestService();
  });

  afterAll(async () => {
    await svc?.close();
    await a?.stop();
    await b?.stop();
  });

  beforeEach(() => {
    for (const p of [a, b]) {
      p.vote = () => ({ vote: 'yes' });
      p.behaviour = () => 'normal';
      p.onePhaseFails = () => undefined;
    }
  });

  async function begin(body: unknown = {}): Promise<string> {
    const res = await svc.call('POST', '/v1/transactions', body);
    expect(res.status).toBe(201);
    return res.body.id;
  }

  async function enlist(id: string, p: TestParticipant, name: string, prepare?: 'held' | 'eager'): Promise<string> {
    const res = await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: name, url: p.url, ...(prepare ? { prepare } : {}) });
    expect(res.status).toBe(201);
    return res.body.gid;
  }

  describe('happy paths', () => {
    it('begin → 201 {id, state, expiresAt}; GET shows it with metadata', async () => {
      const res = await svc.call('POST', '/v1/transactions', { timeoutMs: 5_000, metadata: { order: 42 } });
      expect(res.status).toBe(201);
      expect(beginAnswerSchema.parse(res.body)).toMatchObject({ state: 'active' });
      expect(Date.parse(res.body.expiresAt) - Date.now()).toBeGreaterThan(3_000);
      const got = await svc.call('GET', `/v1/transactions/${res.body.id}`);
      expect(got.status).toBe(200);
      expect(transactionAnswerSchema.parse(got.body)).toMatchObject({ id: res.body.id, state: 'active', decision: null, branches: [] });
      expect(got.body.metadata).toEqual({ order: 42 });
    });

    it('begin without a body', async () => {
      const res = await svc.call('POST', '/v1/transactions');
      expect(res.status).toBe(201);
    });

    it('enlist → 201 {branchId, gid, expiresAt}; the branch is listed with its url', async () => {
      const id = await begin();
      const res = await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-a', url: `${a.url}/` });
      expect(res.status).toBe(201);
      const answer = enlistAnswerSchema.parse(res.body);
      expect(answer).toMatchObject({ branchId: 1, gid: `twopc_${id.replace(/-/g, '')}_1` });
      expect(typeof res.body.expiresAt).toBe('string');
      const got = await svc.call('GET', `/v1/transactions/${id}`);
      // The trailing slash is normalized away: the adapter appends /prepare etc.
      expect(got.body.branches).toEqual([{ branchId: 1, gid: answer.gid, participant: 'ledger-a', url: a.url, state: 'active' }]);
    });

    it('commit (two branches) → 200 committed; both prepared, then committed, every call signed', async () => {
      const id = await begin();
      const ga = await enlist(id, a, 'ledger-a');
      const gb = await enlist(id, b, 'ledger-b');
      const res = await svc.call('POST', `/v1/transactions/${id}/commit`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id, state: 'committed', phaseTwoPending: false });
      expect([a.states.get(ga), b.states.get(gb)]).toEqual(['committed', 'committed']);
      expect(a.calls.filter((c) => c.gid === ga).map((c) => `${c.op}:${c.signature}`)).toEqual(['prepare:ok', 'commit:ok']);
      const got = await svc.call('GET', `/v1/transactions/${id}`);
      expect(got.body).toMatchObject({ state: 'completed', decision: 'commit' });
    });

    it('commit of a single held branch is one-phase', async () => {
      const id = await begin();
      const ga = await enlist(id, a, 'ledger-a', 'held');
      const res = await svc.call('POST', `/v1/transactions/${id}/commit`);
      expect(res.status).toBe(200);
      expect(a.calls.filter((c) => c.gid === ga)).toEqual([{ op: 'commit', gid: ga, onePhase: true, signature: 'ok' }]);
    });

    it('a NO vote → 409 problem transaction-aborted with state and reason; both branches rolled back', async () => {
      b.vote = () => ({ vote: 'no', reason: 'insufficient funds' });
      const id = await begin();
      const ga = await enlist(id, a, 'ledger-a');
      const gb = await enlist(id, b, 'ledger-b');
      const res = await svc.call('POST', `/v1/transactions/${id}/commit`);
      expectProblem(res, 409, 'transaction-aborted');
      expect(res.body).toMatchObject({ state: 'aborted', reason: { cause: 'vote-no', participant: 'ledger-b', branchId: 2, message: 'insufficient funds' } });
      await waitFor('rollback of a', () => a.states.get(ga) === 'rolled-back');
      expect(b.states.get(gb)).toBe('rolled-back');
      // Repeating the commit gives the same answer (idempotent by id).
      expectProblem(await svc.call('POST', `/v1/transactions/${id}/commit`), 409, 'transaction-aborted');
    });

    it('a failed one-phase commit → 409 transaction-aborted', async () => {
      a.onePhaseFails = () => 'deadlock detected';
      const id = await begin();
      await enlist(id, a, 'ledger-a', 'held');
      const res = await svc.call('POST', `/v1/transactions/${id}/commit`);
      expectProblem(res, 409, 'transaction-aborted');
      expect(res.body.reason).toMatchObject({ participant: 'ledger-a', message: 'deadlock detected' });
    });

    it('202 when the commit decision is durable but a branch has not acknowledged; it completes later', async () => {
      let failing = true;
      b.behaviour = (op) => (op === 'commit' && failing ? 'fail' : 'normal');
      const id = await begin();
      const ga = await enlist(id, a, 'ledger-a');
      const gb = await enlist(id, b, 'ledger-b');
      const res = await svc.call('POST', `/v1/transactions/${id}/commit`);
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ id, state: 'committed', phaseTwoPending: true });
      expect(a.states.get(ga)).toBe('committed');
      expect(b.states.get(gb)).toBe('prepared');
      const listed = await svc.call('GET', '/v1/transactions?state=committed');
      expect(listed.body.transactions.map((t: { id: string }) => t.id)).toContain(id);
      const inDoubt = await svc.call('GET', '/v1/transactions?state=in-doubt');
      expect(inDoubt.body.transactions.map((t: { id: string }) => t.id)).toContain(id);
      // A repeated commit says the same: decided, phase 2 pending.
      expect((await svc.call('POST', `/v1/transactions/${id}/commit`)).status).toBe(202);
      failing = false;
      await waitFor('phase 2 to finish', async () => (await svc.call('GET', `/v1/transactions/${id}`)).body.state === 'completed');
      expect(b.states.get(gb)).toBe('committed');
      expect((await svc.call('POST', `/v1/transactions/${id}/commit`)).status).toBe(200);
    });

    it('answerAt decided: 202 as soon as the decision is durable, phase 2 finishing after the answer; the default waits for it', async () => {
      b.delay = (op) => (op === 'commit' ? 400 : 0);
      try {
        const decided = await begin();
        const gb = await enlist(decided, b, 'ledger-b');
        await enlist(decided, a, 'ledger-a');
        const early = await svc.call('POST', `/v1/transactions/${decided}/commit`, { answerAt: 'decided' });
        expect(early).toMatchObject({ status: 202, body: { id: decided, state: 'committed', phaseTwoPending: true } });
        expect(b.states.get(gb)).toBe('prepared');
        await waitFor('phase 2 to finish', async () => (await svc.call('GET', `/v1/transactions/${decided}`)).body.state === 'completed');
        expect(b.states.get(gb)).toBe('committed');

        const waited = await begin();
        const gw = await enlist(waited, b, 'ledger-b');
        await enlist(waited, a, 'ledger-a');
        expect(await svc.call('POST', `/v1/transactions/${waited}/commit`, { answerAt: 'completed' })).toMatchObject({ status: 200, body: { phaseTwoPending: false } });
        expect(b.states.get(gw)).toBe('committed');
        expectProblem(await svc.call('POST', `/v1/transactions/${waited}/commit`, { answerAt: 'soon' }), 400, 'invalid-input');
      } finally {
        b.delay = () => 0;
      }
    });

    it('abort → 200; again → 200; commit afterwards → 409 transaction-aborted', async () => {
      const id = await begin();
      const ga = await enlist(id, a, 'ledger-a');
      const res = await svc.call('POST', `/v1/transactions/${id}/abort`, { reason: 'customer cancelled' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id, state: 'aborted' });
      expect(a.states.get(ga)).toBe('rolled-back');
      expect((await svc.call('POST', `/v1/transactions/${id}/abort`)).status).toBe(200);
      const commit = await svc.call('POST', `/v1/transactions/${id}/commit`);
      expectProblem(commit, 409, 'transaction-aborted');
      expect(commit.body.reason).toMatchObject({ cause: 'application', message: 'customer cancelled' });
    });

    it('abort of a committed transaction → 409 state-conflict', async () => {
      const id = await begin();
      await enlist(id, a, 'ledger-a');
      await enlist(id, b, 'ledger-b');
      expect((await svc.call('POST', `/v1/transactions/${id}/commit`)).status).toBe(200);
      const res = await svc.call('POST', `/v1/transactions/${id}/abort`);
      expectProblem(res, 409, 'state-conflict');
      expect(res.body.state).toBe('committed');
    });

    it('enlist in an aborted transaction → 409', async () => {
      const id = await begin();
      await enlist(id, a, 'ledger-a');
      a.behaviour = (op) => (op === 'rollback' ? 'hang' : 'normal');
      // The abort hangs on the participant's rollback; the transaction is aborted meanwhile.
      const aborting = svc.call('POST', `/v1/transactions/${id}/abort`);
      await waitFor('abort decision', async () => (await svc.call('GET', `/v1/transactions/${id}`)).body.state === 'aborted');
      expectProblem(await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'x', url: b.url }), 409, 'transaction-aborted');
      // The hung rollback times out (participantCalls.phaseTwoTimeoutMs) and its retry is acknowledged.
      a.behaviour = () => 'normal';
      expect((await aborting).status).toBe(200);
    });

    it('lists by state, oldest first, with a limit', async () => {
      const ids = [await begin(), await begin(), await begin()];
      const res = await svc.call('GET', '/v1/transactions?state=active&limit=1000');
      expect(res.status).toBe(200);
      const listed = res.body.transactions.map((t: { id: string }) => t.id);
      expect(listed).toEqual(expect.arrayContaining(ids));
      expect(listed.indexOf(ids[0])).toBeLessThan(listed.indexOf(ids[2]));
      expect(res.body.transactions.every((t: { state: string }) => t.state === 'active')).toBe(true);
      const one = await svc.call('GET', '/v1/transactions?limit=1');
      expect(one.body.transactions).toHaveLength(1);
      expect(one.body.truncated).toBe(true);
      expect((await svc.call('GET', '/v1/transactions?state=heuristic')).body).toEqual({ transactions: [], truncated: false, total: 0 });
    });

    it('health, readiness, metrics and the OpenAPI document need no token', async () => {
      for (const p of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
        const res = await fetch(`${svc.base}${p}`);
        expect([p, res.status]).toEqual([p, 200]);
      }
      const metrics = await (await fetch(`${svc.base}/metrics`)).text();
      expect(metrics).toMatch(/twopc_transactions_total\{outcome="commit"\} \d+/);
      expect(metrics).toMatch(/twopc_in_doubt \d+/);
      expect(metrics).toMatch(/twopc_http_request_seconds_count\{route="\/v1\/transactions\/:id\/commit",method="POST",status="200"\} \d+/);
    });
  });

  describe('errors', () => {
    it('unknown id → 404 not-found on every route', async () => {
      expectProblem(await svc.call('GET', `/v1/transactions/${UNKNOWN_ID}`), 404, 'not-found');
      expectProblem(await svc.call('POST', `/v1/transactions/${UNKNOWN_ID}/commit`), 404, 'not-found');
      expectProblem(await svc.call('POST', `/v1/transactions/${UNKNOWN_ID}/abort`), 404, 'not-found');
      expectProblem(await svc.call('POST', `/v1/transactions/${UNKNOWN_ID}/branches`, { participant: 'p', url: a.url }), 404, 'not-found');
    });

    it('an id that is not a UUID → 400 naming id', async () => {
      for (const bad of ["x'; drop table t; --", 'ABC', '%27%3B']) {
        expectProblem(await svc.call('GET', `/v1/transactions/${bad}`), 400, 'invalid-input', 'id');
        expectProblem(await svc.call('POST', `/v1/transactions/${bad}/commit`), 400, 'invalid-input', 'id');
      }
    });

    it('invalid bodies → 400 naming the field', async () => {
      const id = await begin();
      const cases: Array<[string, unknown, string]> = [
        ['/v1/transactions', { timeoutMs: 'soon' }, 'timeoutMs'],
        ['/v1/transactions', { timeoutMs: 0 }, 'timeoutMs'],
        ['/v1/transactions', { timeoutMs: 10 ** 12 }, 'timeoutMs'],
        ['/v1/transactions', { metadata: [1] }, 'metadata'],
        ['/v1/transactions', { metadata: { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } } }, 'metadata'],
        ['/v1/transactions', { surprise: 1 }, 'surprise'],
        ['/v1/transactions', [1, 2], '(body)'],
        [`/v1/transactions/${id}/branches`, { participant: "a'b", url: a.url }, 'participant'],
        [`/v1/transactions/${id}/branches`, { participant: 'a', url: 'ftp://x/y' }, 'url'],
        [`/v1/transactions/${id}/branches`, { participant: 'a', url: 'http://user:pw@127.0.0.1:1/p' }, 'url'],
        [`/v1/transactions/${id}/branches`, { participant: 'a', url: 'http://127.0.0.1:1/p?x=1' }, 'url'],
        [`/v1/transactions/${id}/branches`, { participant: 'a' }, 'url'],
        [`/v1/transactions/${id}/branches`, {}, 'participant'],
        [`/v1/transactions/${id}/commit`, { force: true }, 'force'],
        [`/v1/transactions/${id}/abort`, { reason: 7 }, 'reason'],
      ];
      for (const [p, body, field] of cases) {
        const res = await svc.call('POST', p, body);
        expect([p, body, res.status, res.body.code, res.body.field]).toEqual([p, body, 400, 'invalid-input', field]);
      }
    });

    it('bad query parameters → 400 naming them', async () => {
      expectProblem(await svc.call('GET', '/v1/transactions?state=completed'), 400, 'invalid-input', 'state');
      expectProblem(await svc.call('GET', '/v1/transactions?state=active&state=aborted'), 400, 'invalid-input', 'state');
      expectProblem(await svc.call('GET', '/v1/transactions?limit=0'), 400, 'invalid-input', 'limit');
      expectProblem(await svc.call('GET', '/v1/transactions?limit=1001'), 400, 'invalid-input', 'limit');
      expectProblem(await svc.call('GET', '/v1/transactions?limit=-1'), 400, 'invalid-input', 'limit');
      expectProblem(await svc.call('GET', '/v1/transactions?sort=id'), 400, 'invalid-input', 'sort');
    });

    it('malformed JSON → 400 malformed-json; non-JSON → 415; compressed → 415', async () => {
      expectProblem(await svc.call('POST', '/v1/transactions', '{"timeoutMs": '), 400, 'malformed-json');
      expectProblem(await svc.call('POST', '/v1/transactions', '"just a string"'), 400, 'malformed-json');
      expectProblem(await svc.call('POST', '/v1/transactions', 'timeoutMs=5', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported-media-type');
      expectProblem(await svc.call('POST', '/v1/transactions', '{}', { 'content-type': 'text/plain' }), 415, 'unsupported-media-type');
      expectProblem(await svc.call('POST', '/v1/transactions', '{}', { 'content-encoding': 'gzip' }), 415, 'unsupported-media-type');
    });

    it('a body over the limit → 413 payload-too-large', async () => {
      const res = await svc.call('POST', '/v1/transactions', { metadata: { blob: 'x'.repeat(20 * 1024) } });
      expectProblem(res, 413, 'payload-too-large');
    });

    it('unknown routes → 404 route-not-found; wrong methods → 405 with Allow', async () => {
      expectProblem(await svc.call('GET', '/v1/nothing-here'), 404, 'route-not-found');
      expectProblem(await svc.call('GET', '/nothing-here'), 404, 'route-not-found');
      const res = await svc.call('DELETE', '/v1/transactions');
      expectProblem(res, 405, 'method-not-allowed');
      expect(res.headers.get('allow')).toBe('GET, POST');
      expectProblem(await svc.call('GET', `/v1/transactions/${UNKNOWN_ID}/commit`), 405, 'method-not-allowed');
      expectProblem(await svc.call('POST', '/healthz'), 405, 'method-not-allowed');
    });

    it('API auth: missing or wrong bearer token → 401 with WWW-Authenticate; the admin token is accepted', async () => {
      const missing = await svc.call('POST', '/v1/transactions', {}, { authorization: '' });
      expectProblem(missing, 401, 'unauthorized');
      expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="twopc"');
      expectProblem(await svc.call('GET', `/v1/transactions/${UNKNOWN_ID}`, undefined, { authorization: 'Bearer wrong-token' }), 401, 'unauthorized');
      expectProblem(await svc.call('GET', '/v1/transactions', undefined, { authorization: 'Basic dXNlcjpwYXNz' }), 401, 'unauthorized');
      // Authentication comes before anything else: no route or body is looked at.
      expectProblem(await svc.call('GET', '/v1/nothing-here', undefined, { authorization: '' }), 401, 'unauthorized');
      expect((await svc.call('POST', '/v1/transactions', {}, { authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(201);
    });
  });

  describe('Idempotency-Key', () => {
    it('begin: a repeat returns the first answer; a different body with the key → 422', async () => {
      const key = { 'idempotency-key': `begin-${Date.now()}` };
      const first = await svc.call('POST', '/v1/transactions', { timeoutMs: 5_000 }, key);
      const again = await svc.call('POST', '/v1/transactions', { timeoutMs: 5_000 }, key);
      expect(again.status).toBe(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      expectProblem(await svc.call('POST', '/v1/transactions', { timeoutMs: 6_000 }, key), 422, 'idempotency-key-reused', 'Idempotency-Key');
      expectProblem(await svc.call('POST', `/v1/transactions/${first.body.id}/abort`, undefined, key), 422, 'idempotency-key-reused');
    });

    it('concurrent repeats share the first call', async () => {
      const key = { 'idempotency-key': `concurrent-${Date.now()}` };
      const answers = await Promise.all(Array.from({ length: 5 }, () => svc.call('POST', '/v1/transactions', {}, key)));
      expect(new Set(answers.map((r) => r.body.id)).size).toBe(1);
    });

    it('enlist, commit and abort repeats return the first answer', async () => {
      const id = await begin();
      const enlistKey = { 'idempotency-key': `enlist-${id}` };
      const e1 = await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-a', url: a.url }, enlistKey);
      const e2 = await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-a', url: a.url }, enlistKey);
      expect([e1.status, e2.status]).toEqual([201, 201]);
      expect(e2.body).toEqual(e1.body);
      await enlist(id, b, 'ledger-b');
      expect((await svc.call('GET', `/v1/transactions/${id}`)).body.branches).toHaveLength(2);
      const commitKey = { 'idempotency-key': `commit-${id}` };
      const c1 = await svc.call('POST', `/v1/transactions/${id}/commit`, undefined, commitKey);
      const c2 = await svc.call('POST', `/v1/transactions/${id}/commit`, undefined, commitKey);
      expect([c1.status, c2.status, c2.headers.get('idempotent-replayed')]).toEqual([200, 200, 'true']);
      expect(c2.body).toEqual(c1.body);
      expect(a.ops('commit').filter((c) => c.gid === e1.body.gid)).toHaveLength(1);

      const id2 = await begin();
      const abortKey = { 'idempotency-key': `abort-${id2}` };
      const a1 = await svc.call('POST', `/v1/transactions/${id2}/abort`, { reason: 'no' }, abortKey);
      const a2 = await svc.call('POST', `/v1/transactions/${id2}/abort`, { reason: 'no' }, abortKey);
      expect([a1.status, a2.status, a2.headers.get('idempotent-replayed')]).toEqual([200, 200, 'true']);
    });

    it('error answers are replayed too; a malformed key → 400', async () => {
      const key = { 'idempotency-key': `err-${Date.now()}` };
      const first = await svc.call('POST', `/v1/transactions/${UNKNOWN_ID}/commit`, undefined, key);
      const again = await svc.call('POST', `/v1/transactions/${UNKNOWN_ID}/commit`, undefined, key);
      expect([first.status, again.status, again.headers.get('idempotent-replayed')]).toEqual([404, 404, 'true']);
      expect(again.headers.get('content-type')).toMatch(/problem\+json/);
      expectProblem(await svc.call('POST', '/v1/transactions', {}, { 'idempotency-key': 'has space' }), 400, 'invalid-input', 'Idempotency-Key');
    });
  });

  describe('participant calls', () => {
    it('the participant rejects unsigned and wrongly signed calls with 401', async () => {
      const body = JSON.stringify({ txId: UNKNOWN_ID, branchId: 1, gid: `twopc_${UNKNOWN_ID.replace(/-/g, '')}_1` });
      const unsigned = await fetch(`${a.url}/prepare`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(unsigned.status).toBe(401);
      const { signRequest } = await import('../../participant-sdk/src/signature');
      const wrong = await fetch(`${a.url}/prepare`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'twopc-signature': signRequest('another-secret-0123456789', 'POST', '/twopc/prepare', body) } });
      expect(wrong.status).toBe(401);
      const tampered = await fetch(`${a.url}/prepare`, { method: 'POST', body: body.replace('"branchId":1', '"branchId":2'), headers: { 'content-type': 'application/json', 'twopc-signature': signRequest(SECRET, 'POST', '/twopc/prepare', body) } });
      expect(tampered.status).toBe(401);
      expect(a.calls.filter((c) => c.signature === 'rejected')).toHaveLength(3);
    });

    it('a coordinator with the wrong secret gets "no" votes: the transaction aborts and nothing is prepared', async () => {
      const other = await startTestService({ participantSecret: 'not-the-participants-secret-0123' });
      try {
        const id = (await other.call('POST', '/v1/transactions')).body.id;
        await other.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-a', url: a.url });
        await other.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-b', url: b.url });
        const res = await other.call('POST', `/v1/transactions/${id}/commit`);
        expectProblem(res, 409, 'transaction-aborted');
        expect(res.body.reason.message).toMatch(/HTTP 401/);
      } finally {
        await other.close();
      }
    });

    it('without a participant secret, branches with a url are refused', async () => {
      const other = await startTestService({ participantSecret: undefined });
      try {
        const id = (await other.call('POST', '/v1/transactions')).body.id;
        const res = await other.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-a', url: a.url });
        expectProblem(res, 400, 'invalid-input', 'url');
        expect(res.body.detail).toMatch(/TWOPC_PARTICIPANT_SECRET/);
      } finally {
        await other.close();
      }
    });

    it('participantUrlAllowList confines enlisted URLs', async () => {
      const other = await startTestService({ participantUrlAllowList: [a.url] });
      try {
        const id = (await other.call('POST', '/v1/transactions')).body.id;
        expect((await other.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-a', url: a.url })).status).toBe(201);
        expectProblem(await other.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-b', url: b.url }), 400, 'invalid-input', 'url');
        expectProblem(await other.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-a', url: `${a.url}x` }), 400, 'invalid-input', 'url');
        expect((await other.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger-a', url: `${a.url}/sub` })).status).toBe(201);
      } finally {
        await other.close();
      }
    });
  });
});
