import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../coordinator/demo/free-port';
import { PgCluster } from '../../harness/pg-cluster';
import { TsProcess } from './processes';
import { accountsTableSql } from '../../harness/bank';
import { ContractCheck } from '../support/contract-check';
import { ContractProxy } from '../support/contract-proxy';
import { TestParticipant } from '../service/test-participant';

/**
 * End to end, every party its own process: `twopc serve` (the coordinator),
 * and participant services built on the SDK, each on its own database.
 * A client (this test) begins and commits over the coordinator's API and
 * calls the services with the `twopc-transaction` header. The test and the
 * services reach the coordinator through a proxy that holds every answer to
 * the coordinator's own /openapi.json.
 */

const TOKEN = 'e2e-api-token-0123456789';
const SECRET = 'e2e-participant-secret-0123456789';
const READY_SERVICE = /"ready":true/;

interface Service {
  proc: TsProcess;
  url: string;
  db: string;
}

describe('end to end: coordinator and SDK participant services as processes', () => {
  let cluster: PgCluster;
  let dir: string;
  let coordinator: TsProcess;
  let contract: ContractCheck;
  let proxy: ContractProxy;
  let api: string;
  let a: Service;
  let b: Service;
  const extra: TsProcess[] = [];

  function participantProcess(name: string, db: string, port: number, env: Record<string, string> = {}): TsProcess {
    return new TsProcess(name, 'test/e2e/participant-service.ts', [], {
      PORT: String(port),
      DATABASE_URL: cluster.connectionString(db),
      NAME: name,
      COORDINATOR_URL: api,
      TWOPC_API_TOKEN: TOKEN,
      TWOPC_PARTICIPANT_SECRET: SECRET,
      ...env,
    });
  }

  async function startParticipant(name: string, db: string, env: Record<string, string> = {}): Promise<Service> {
    const port = await freePort();
    const proc = participantProcess(name, db, port, env);
    await proc.start(READY_SERVICE);
    return { proc, url: `http://127.0.0.1:${port}`, db };
  }

  async function createLedger(db: string): Promise<void> {
    await cluster.createDatabase(db);
    await cluster.withClient(async (c) => {
      await c.query(accountsTableSql({ balance: 'int', nonNegative: true }));
      await c.query('insert into accounts values (1, 100), (2, 100)');
      // Checked at PREPARE, not at the insert: a duplicate ref is a "no" vote of a branch whose work succeeded.
      await c.query('create table transfers (ref text unique deferrable initially deferred)');
      await c.query(`insert into transfers values ('taken')`);
    }, db);
  }

  const balance = (db: string, account = 1) =>
    cluster.withClient(async (c) => Number((await c.query<{ balance: number }>('select balance from accounts where id = $1', [account])).rows[0].balance), db);

  async function call(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const res = await fetch(`${api}${p}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async function begin(headers: Record<string, string> = {}): Promise<string> {
    const res = await call('POST', '/v1/transactions', { timeoutMs: 20_000 }, headers);
    expect(res.status).toBe(201);
    return res.body.id;
  }

  async function transfer(svc: Service, txId: string, amount: number, ref: string, account = 1): Promise<{ status: number; body: any }> {
    const res = await fetch(`${svc.url}/transfer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'twopc-transaction': txId },
      body: JSON.stringify({ account, amount, ref }),
    });
    return { status: res.status, body: await res.json() };
  }

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\ncoordinator:\n${coordinator.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'e2e' });
    await Promise.all([createLedger('ledger_a'), createLedger('ledger_b'), createLedger('ledger_c')]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-e2e-'));
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ engine: { commitWaitMs: 1_000, phaseTwoBaseDelayMs: 20, phaseTwoMaxDelayMs: 200, sweepIntervalMs: 0 } }));
    coordinator = new TsProcess('coordinator', 'coordinator/cli/main.ts', ['serve', '--config', config], {
      TWOPC_PORT: '0',
      TWOPC_DATA_DIR: path.join(dir, 'data'),
      TWOPC_API_TOKEN: TOKEN,
      TWOPC_PARTICIPANT_SECRET: SECRET,
      TWOPC_LOG_LEVEL: 'info',
    });
    const ready = await coordinator.start(/"port":(\d+).*"msg":"twopc coordinator ready"/);
    contract = await ContractCheck.of(`http://127.0.0.1:${ready[1]}`);
    proxy = await ContractProxy.start(`http://127.0.0.1:${ready[1]}`, contract);
    api = proxy.url;
    [a, b] = await Promise.all([startParticipant('ledger_a', 'ledger_a'), startParticipant('ledger_b', 'ledger_b')]);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled([a?.proc.stop(), b?.proc.stop(), ...extra.map((p) => p.stop())]);
    await proxy?.close();
    await coordinator?.stop();
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    contract?.assertHeld({ minChecked: 30 });
  });

  afterEach(async () => {
    // Every scenario ends with nothing of ours prepared (the coordinator finishes phase 2 first).
    await waitFor('no prepared transactions', async () => (await cluster.preparedGids('twopc')).length === 0);
    contract.assertHeld();
  });

  it('commits a transfer across two services', async () => {
    const [beforeA, beforeB] = [await balance(a.db), await balance(b.db)];
    const id = await begin();
    expect(await transfer(a, id, -10, `c-${id}`)).toMatchObject({ status: 200 });
    expect(await transfer(b, id, 10, `c-${id}`)).toMatchObject({ status: 200 });
    const res = await call('POST', `/v1/transactions/${id}/commit`);
    expect(res).toEqual({ status: 200, body: { id, state: 'committed', phaseTwoPending: false } });
    expect([await balance(a.db), await balance(b.db)]).toEqual([beforeA - 10, beforeB + 10]);
    const status = await call('GET', `/v1/transactions/${id}`);
    expect(status.body).toMatchObject({ state: 'completed', decision: 'commit' });
    expect(status.body.branches.map((x: { participant: string; url: string }) => [x.participant, x.url])).toEqual([
      ['ledger_a', `${a.url}/twopc`],
      ['ledger_b', `${b.url}/twopc`],
    ]);
  });

  it('commits with a participant that speaks only the per-call protocol beside SDK services that accept batches', async () => {
    // A participant written from SPEC §6 alone: no /batch route, and it says nothing of batches when enlisted.
    const perCall = await new TestParticipant(SECRET).start();
    perCall.delay = (op) => (op === 'prepare' ? 50 : 0);
    try {
      // An account per transaction: they run at once, and held branches keep their row locks (and connections: 10 per service) until commit.
      for (const db of [a.db, b.db]) await cluster.withClient((c) => c.query('insert into accounts select g, 100 from generate_series(101, 108) g on conflict do nothing'), db);
      const total = (db: string) => cluster.withClient(async (c) => Number((await c.query('select sum(balance) as s from accounts where id > 100')).rows[0].s), db);
      const [beforeA, beforeB] = [await total(a.db), await total(b.db)];
      const ids = await Promise.all(Array.from({ length: 8 }, () => begin()));
      await Promise.all(ids.map(async (id, i) => {
        expect(await transfer(a, id, -1, `p-${id}`, 101 + i)).toMatchObject({ status: 200 });
        expect((await transfer(b, id, 1, `p-${id}`, 101 + i)).status).toBe(200);
        expect((await call('POST', `/v1/transactions/${id}/branches`, { participant: 'per_call', url: perCall.url, prepare: 'held' })).status).toBe(201);
      }));
      const results = await Promise.all(ids.map((id) => call('POST', `/v1/transactions/${id}/commit`)));
      expect(results.map((r) => r.status)).toEqual(ids.map(() => 200));
      expect([await total(a.db), await total(b.db)]).toEqual([beforeA - 8, beforeB + 8]);
      expect(perCall.calls.filter((c) => c.signature === 'ok').map((c) => c.op).sort()).toEqual([...ids.map(() => 'commit'), ...ids.map(() => 'prepare')]);
      expect([...perCall.states.values()]).toEqual(ids.map(() => 'committed'));
    } finally {
      await perCall.stop();
    }
  });

  it('aborts when a branch votes no at PREPARE, and says which and why', async () => {
    const [beforeA, beforeB] = [await balance(a.db), await balance(b.db)];
    const id = await begin();
    expect((await transfer(a, id, -10, `n-${id}`)).status).toBe(200);
    // The insert succeeds; the deferred unique check fails at PREPARE TRANSACTION.
    expect((await transfer(b, id, 10, 'taken')).status).toBe(200);
    const res = await call('POST', `/v1/transactions/${id}/commit`);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'transaction-aborted', state: 'aborted', reason: { cause: 'vote-no', participant: 'ledger_b', branchId: 2 } });
    expect(res.body.reason.message).toMatch(/duplicate key/);
    expect([await balance(a.db), await balance(b.db)]).toEqual([beforeA, beforeB]);
  });

  it('aborts when a participant service dies before PREPARE', async () => {
    const [beforeA, beforeB] = [await balance(a.db), await balance(b.db)];
    const id = await begin();
    expect((await transfer(a, id, -10, `d-${id}`)).status).toBe(200);
    expect((await transfer(b, id, 10, `d-${id}`)).status).toBe(200);
    await a.proc.stop('SIGKILL');
    const res = await call('POST', `/v1/transactions/${id}/commit`);
    expect(res.status).toBe(409);
    expect(res.body.reason).toMatchObject({ cause: 'vote-no', participant: 'ledger_a' });
    expect(res.body.reason.message).toMatch(/ECONNREFUSED|unreachable|connect/i);
    // A's open branch died with its connection; B's held branch was rolled back.
    expect([await balance(a.db), await balance(b.db)]).toEqual([beforeA, beforeB]);
    await a.proc.start(READY_SERVICE);
    // Back up, A acknowledges the rollback the coordinator kept retrying.
    await waitFor('the abort to complete', async () => (await call('GET', `/v1/transactions/${id}`)).body.state === 'completed');
  });

  it('finishes a commit once a participant that died after voting yes comes back', async () => {
    const [beforeA, beforeB] = [await balance(a.db), await balance(b.db)];
    const id = await begin();
    expect((await transfer(a, id, -10, `y-${id}`)).status).toBe(200);
    expect((await transfer(b, id, 10, `y-${id}`)).status).toBe(200);
    await fetch(`${a.url}/crash-on-commit`, { method: 'POST' });
    const res = await call('POST', `/v1/transactions/${id}/commit`);
    // The decision is durable; A died holding its prepared branch.
    expect(res).toEqual({ status: 202, body: { id, state: 'committed', phaseTwoPending: true } });
    await a.proc.exited();
    expect(await cluster.preparedGids('twopc')).toEqual([`twopc_${id.replace(/-/g, '')}_1`]);
    expect(await balance(b.db)).toBe(beforeB + 10);
    expect((await call('GET', '/v1/transactions?state=in-doubt')).body.transactions.map((t: { id: string }) => t.id)).toContain(id);
    await a.proc.start(READY_SERVICE);
    await waitFor('phase 2 to reach A', async () => (await call('GET', `/v1/transactions/${id}`)).body.state === 'completed');
    expect([await balance(a.db), await balance(b.db)]).toEqual([beforeA - 10, beforeB + 10]);
    expect((await call('POST', `/v1/transactions/${id}/commit`)).status).toBe(200);
  });

  it('idempotent repeats: begin with a key, commit and abort by id', async () => {
    const key = { 'idempotency-key': `e2e-${Date.now()}` };
    const id = await begin(key);
    expect(await begin(key)).toBe(id);
    expect((await transfer(a, id, -1, `i-${id}`)).status).toBe(200);
    expect((await transfer(b, id, 1, `i-${id}`)).status).toBe(200);
    const first = await call('POST', `/v1/transactions/${id}/commit`, undefined, { 'idempotency-key': `commit-${id}` });
    const replayed = await call('POST', `/v1/transactions/${id}/commit`, undefined, { 'idempotency-key': `commit-${id}` });
    const byId = await call('POST', `/v1/transactions/${id}/commit`);
    expect([first, replayed, byId].map((r) => [r.status, r.body.state])).toEqual([[200, 'committed'], [200, 'committed'], [200, 'committed']]);

    const other = await begin();
    expect((await transfer(a, other, -1, `j-${other}`)).status).toBe(200);
    expect((await call('POST', `/v1/transactions/${other}/abort`)).status).toBe(200);
    expect((await call('POST', `/v1/transactions/${other}/abort`)).status).toBe(200);
    expect((await call('POST', `/v1/transactions/${other}/commit`)).body.code).toBe('transaction-aborted');
  });

  it('auth both ways: the API wants the bearer token, participants want the coordinator\'s signature', async () => {
    // Client → coordinator.
    expect((await call('POST', '/v1/transactions', {}, { authorization: '' })).status).toBe(401);
    expect((await call('POST', '/v1/transactions', {}, { authorization: 'Bearer not-the-token' })).status).toBe(401);
    // A participant service with the wrong API token cannot enlist.
    const wrongToken = await startParticipant('ledger_c', 'ledger_c', { TWOPC_API_TOKEN: 'not-the-token-0123456789' });
    extra.push(wrongToken.proc);
    const id = await begin();
    const enlisted = await transfer(wrongToken, id, 1, `t-${id}`);
    expect([enlisted.status, enlisted.body.code]).toEqual([401, 'unauthorized']);
    await wrongToken.proc.stop();

    // Anyone → participant without the coordinator's signature.
    const unsigned = await fetch(`${a.url}/twopc/prepare`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ txId: id, branchId: 1, gid: `twopc_${id.replace(/-/g, '')}_1` }) });
    expect(unsigned.status).toBe(401);
    // Coordinator → a participant that expects another secret: its PREPARE is refused, so the transaction aborts.
    const wrongSecret = await startParticipant('ledger_c', 'ledger_c', { TWOPC_PARTICIPANT_SECRET: 'another-participant-secret-012345' });
    extra.push(wrongSecret.proc);
    const before = await balance('ledger_c');
    const tx = await begin();
    expect((await transfer(a, tx, -1, `s-${tx}`)).status).toBe(200);
    expect((await transfer(wrongSecret, tx, 1, `s-${tx}`)).status).toBe(200);
    const res = await call('POST', `/v1/transactions/${tx}/commit`);
    expect(res.status).toBe(409);
    expect(res.body.reason).toMatchObject({ participant: 'ledger_c' });
    expect(res.body.reason.message).toMatch(/HTTP 401/);
    expect(await balance('ledger_c')).toBe(before);
    // Its branch is still held (it never heard a signed rollback); stopping the service rolls it back.
    await wrongSecret.proc.stop();
  });
});
