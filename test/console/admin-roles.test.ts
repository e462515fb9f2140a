import { loadServiceConfig } from '../../coordinator/assembly/service-config';
import { operatorsOf, resolveApiAuth } from '../../coordinator/service/api-tokens';
import { ADMIN_TOKEN, API_TOKEN, SECRET, startTestService, type TestService } from '../service/service-fixture';
import { TestParticipant } from '../service/test-participant';
import { jsonOf, runCli } from '../cli/cli-fixture';
import { ContractCheck } from '../support/contract-check';

// Issue 14 item 2: named operator tokens, roles enforced by the admin API (not only by the console), and every
// operator action recorded in its transaction's history with who and when.

const VIEWER = 'viewer-token-of-vera-0123456789';
const OPERATOR = 'admin-token-of-olga-0123456789';

describe('admin API roles and the operators history', () => {
  let svc: TestService;
  let a: TestParticipant;
  let b: TestParticipant;
  let contract: ContractCheck;

  beforeAll(async () => {
    a = await new TestParticipant(SECRET).start();
    b = await new TestParticipant(SECRET).start();
    const started = await startTestService(
      { tokens: [{ name: 'vera', role: 'viewer', token: VIEWER }, { name: 'olga', role: 'admin', token: OPERATOR }] },
      { phaseTwoBaseDelayMs: 600_000, phaseTwoMaxDelayMs: 600_000, commitWaitMs: 300 },
    );
    contract = await ContractCheck.of(started.base);
    // Every answer these tests get is held to the coordinator's own /openapi.json (403s, whoami, phase-two, lists).
    svc = {
      ...started,
      async call(method, p, body, headers) {
        const answer = await started.call(method, p, body, headers);
        const contentType = answer.headers.get('content-type');
        contract.record({ method, target: p, status: answer.status, ...(contentType ? { contentType } : {}), body: typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body) });
        return answer;
      },
    };
  });

  afterEach(() => contract.assertHeld());

  afterAll(async () => {
    contract?.assertHeld({ minChecked: 40 });
    await svc?.close();
    await a?.stop();
    await b?.stop();
  });

  const as = (token: string) => ({ authorization: `Bearer ${token}` });

  /** Committed, with b's COMMIT failing until `b.behaviour` is reset: in doubt, its retry 10 minutes away. */
  async function inDoubt(metadata: Record<string, unknown> = {}): Promise<string> {
    const id: string = (await svc.call('POST', '/v1/transactions', { metadata })).body.id;
    await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger_a', url: a.url });
    await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger_b', url: b.url });
    b.behaviour = (op) => (op === 'commit' ? 'fail' : 'normal');
    expect((await svc.call('POST', `/v1/transactions/${id}/commit`)).status).toBe(202);
    b.behaviour = () => 'normal';
    return id;
  }

  it('tells each token who it is; the API token and wrong tokens do not open the admin API; operator tokens do not open /v1', async () => {
    expect((await svc.call('GET', '/v1/admin/whoami', undefined, as(VIEWER))).body).toEqual({ name: 'vera', role: 'viewer' });
    expect((await svc.call('GET', '/v1/admin/whoami', undefined, as(OPERATOR))).body).toEqual({ name: 'olga', role: 'admin' });
    expect((await svc.call('GET', '/v1/admin/whoami', undefined, as(ADMIN_TOKEN))).body).toEqual({ name: 'admin', role: 'admin' });
    for (const token of [API_TOKEN, 'wrong-token-0123456789abcdef']) {
      const res = await svc.call('GET', '/v1/admin/transactions', undefined, as(token));
      expect([res.status, res.body.code, res.headers.get('www-authenticate')]).toEqual([401, 'unauthorized', 'Bearer realm="twopc-admin"']);
    }
    for (const token of [VIEWER, OPERATOR]) expect((await svc.call('POST', '/v1/transactions', {}, as(token))).status).toBe(401);
  });

  it("refuses every action of a viewer with 403 forbidden, and changes nothing; a viewer reads", async () => {
    const id = await inDoubt();
    const actions: Array<[string, unknown]> = [
      [`/v1/admin/transactions/${id}/retry`, {}],
      [`/v1/admin/transactions/${id}/resolve`, { outcome: 'commit' }],
      [`/v1/admin/transactions/${id}/settle`, { note: 'reconciled by hand' }],
      ['/v1/admin/recover', {}],
      ['/v1/admin/orphans/rollback', {}],
      ['/v1/admin/log/compact', {}],
    ];
    for (const [path, body] of actions) {
      const res = await svc.call('POST', path, body, as(VIEWER));
      expect([path, res.status, res.body.code, res.headers.get('content-type')]).toEqual([path, 403, 'forbidden', 'application/problem+json; charset=utf-8']);
      expect(res.body.detail).toContain('vera has the viewer role');
    }
    const history = await svc.call('GET', `/v1/admin/transactions/${id}/history`, undefined, as(VIEWER));
    expect(history.status).toBe(200);
    expect(history.body.events.map((e: { type: string }) => e.type)).toEqual(['begin', 'enlist', 'enlist', 'decision']);
    expect((await svc.call('GET', `/v1/admin/transactions/${id}`, undefined, as(VIEWER))).body.state).toBe('committed');
    expect((await svc.call('GET', '/v1/admin/orphans', undefined, as(VIEWER))).status).toBe(200);
    // Why it is stuck, as the instance driving its phase 2 sees it (memory only).
    const phaseTwo = (await svc.call('GET', `/v1/admin/transactions/${id}/phase-two`, undefined, as(VIEWER))).body;
    expect(phaseTwo).toMatchObject({ txId: id, driving: true, branches: [{ branchId: 2, participant: 'ledger_b', failedAttempts: 1, lastError: expect.any(String) }] });
    expect(Date.parse(phaseTwo.branches[0].nextAttemptAt) - Date.now()).toBeGreaterThan(60_000);
  });

  it("records each admin action in the transaction's history, with the token's name and the time, before it runs", async () => {
    const id = await inDoubt();
    const before = Date.now();
    // A contradiction: refused by the register, and still on record as asked.
    const refused = await svc.call('POST', `/v1/admin/transactions/${id}/resolve`, { outcome: 'abort' }, as(OPERATOR));
    expect([refused.status, refused.body.code]).toEqual([409, 'state-conflict']);
    expect(refused.body.detail).toContain('already decided commit');
    b.behaviour = (op) => (op === 'commit' ? 'fail' : 'normal');
    const retried = await svc.call('POST', `/v1/admin/transactions/${id}/retry`, { waitMs: 2_000 }, as(ADMIN_TOKEN));
    expect(retried.body).toMatchObject({ retried: true, completed: false });
    b.behaviour = () => 'normal';
    // A decided transaction still driven here (b is back): resolve applies the decision now, it does not wait out the 10-minute backoff.
    const resolved = await svc.call('POST', `/v1/admin/transactions/${id}/resolve`, { outcome: 'commit' }, as(OPERATOR));
    expect(resolved.body).toEqual({ txId: id, decision: 'commit', alreadyDecided: true, completed: true, hazards: 0 });
    const events: Array<{ type: string; by?: string; action?: string; at: string }> = (await svc.call('GET', `/v1/admin/transactions/${id}/history`, undefined, as(VIEWER))).body.events;
    const actions = events.filter((e) => e.type === 'action');
    expect(actions.map((e) => [e.by, e.action])).toEqual([['olga', 'resolve-abort'], ['admin', 'retry'], ['olga', 'resolve-commit']]);
    for (const e of actions) expect(Date.parse(e.at)).toBeGreaterThanOrEqual(before - 5);
    expect(events[events.length - 1].type).toBe('complete');
    // An action on a completed transaction is not recorded: it does nothing, and its records may be forgotten any time.
    expect((await svc.call('POST', `/v1/admin/transactions/${id}/retry`, {}, as(OPERATOR))).body.retried).toBe(false);
    expect((await svc.call('GET', `/v1/admin/transactions/${id}/history`, undefined, as(OPERATOR))).body.events).toHaveLength(events.length);
  });

  it("the CLI with a viewer's token reads, and its action is refused with exit 3 (forbidden)", async () => {
    const id = await inDoubt();
    const env = { TWOPC_URL: svc.base, TWOPC_ADMIN_TOKEN: VIEWER };
    const shown = await runCli(['show', id, '--json'], env);
    expect([shown.code, jsonOf(shown).id]).toEqual([0, id]);
    const refused = await runCli(['retry', id, '--json'], env);
    expect([refused.code, jsonOf(refused).error.code]).toEqual([3, 'forbidden']);
    expect(jsonOf(refused).error.message).toMatch(/vera has the viewer role.*use an admin token/);
  });

  it('lists by participant, id prefix and age, paged, with the total', async () => {
    const ids = [await inDoubt({ n: 1 }), await inDoubt({ n: 2 }), await inDoubt({ n: 3 })];
    const list = async (q: string) => (await svc.call('GET', `/v1/admin/transactions?${q}`, undefined, as(VIEWER))).body;
    const all = await list('state=in-doubt&limit=1000');
    expect(all.transactions.map((t: { id: string }) => t.id)).toEqual(expect.arrayContaining(ids));
    const page = await list(`state=in-doubt&limit=1&offset=1`);
    expect([page.transactions[0].id, page.truncated, page.total]).toEqual([all.transactions[1].id, all.total > 2, all.total]);
    expect((await list(`idPrefix=${ids[1].slice(0, 30).toUpperCase()}`)).transactions.map((t: { id: string }) => t.id)).toEqual([ids[1]]);
    expect((await list('participant=ledger_b&limit=1000')).total).toBe(all.total);
    expect((await list('participant=nobody')).total).toBe(0);
    expect((await list('minAgeMs=3600000')).total).toBe(0);
    const bad = await svc.call('GET', '/v1/admin/transactions?offset=-1', undefined, as(VIEWER));
    expect([bad.status, bad.body.field]).toEqual([400, 'offset']);
  });

  it('configures named tokens from the file or TWOPC_TOKENS, and refuses duplicates and a clash with the admin token', () => {
    const env = { TWOPC_API_TOKEN: 'a'.repeat(16), TWOPC_TOKENS: `vera:viewer:${VIEWER},olga:admin:${OPERATOR}` };
    expect(loadServiceConfig({ env }).tokens).toEqual([{ name: 'vera', role: 'viewer', token: VIEWER }, { name: 'olga', role: 'admin', token: OPERATOR }]);
    const refused = (extra: Record<string, string>) => {
      try {
        loadServiceConfig({ env: { ...env, ...extra } });
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(refused({ TWOPC_TOKENS: `vera:viewer:${VIEWER},vera:admin:${OPERATOR}` })).toMatch(/the name vera is given twice/);
    expect(refused({ TWOPC_TOKENS: `vera:owner:${VIEWER}` })).toMatch(/role must be one of viewer, admin/);
    expect(refused({ TWOPC_TOKENS: 'vera:viewer:short' })).toMatch(/at least 16 characters/);
    expect(refused({ TWOPC_TOKENS: 'no-colons' })).toMatch(/TWOPC_TOKENS must be name:role:token/);
    const clash = loadServiceConfig({ env: { ...env, TWOPC_ADMIN_TOKEN: 'b'.repeat(16), TWOPC_TOKENS: `admin:viewer:${VIEWER}` } });
    expect(() => operatorsOf(clash, resolveApiAuth(clash))).toThrow(/the name admin is the admin token's/);
  });
});

describe('admin API with authentication off (insecure)', () => {
  it('acts as anonymous, an admin', async () => {
    const svc = await startTestService({ apiToken: undefined, adminToken: undefined, insecure: true });
    try {
      expect((await svc.call('GET', '/v1/admin/whoami', undefined, { authorization: '' })).body).toEqual({ name: 'anonymous', role: 'admin' });
    } finally {
      await svc.close();
    }
  });
});
