import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../coordinator/demo/free-port';
import { PgCluster } from '../../harness/pg-cluster';
import { accountsTableSql } from '../../harness/bank';
import { CoordinatorClient, registrationFrom, signRegistration, withCarriedTransaction, type CarriedRegistration } from '../../participant-sdk/src';
import { ContractCheck } from '../support/contract-check';
import { TsProcess } from './processes';

/**
 * Carried registration end to end (docs/protocol.md): `twopc serve` with
 * `engine.carriedRegistration`, two SDK participant services on real
 * PostgreSQL. The client mints the id, each service opens its branch without
 * enlisting and answers a signed registration, and the commit carries both.
 */

const TOKEN = 'carried-api-token-0123456789';
const SECRET = 'carried-participant-secret-0123456789';

interface Service {
  proc: TsProcess;
  url: string;
  db: string;
}

describe('carried registration: coordinator and SDK participant services as processes', () => {
  let cluster: PgCluster;
  let dir: string;
  let coordinator: TsProcess;
  let api: string;
  let client: CoordinatorClient;
  let a: Service;
  let b: Service;
  let contract: ContractCheck;

  async function startParticipant(name: string): Promise<Service> {
    const port = await freePort();
    const proc = new TsProcess(name, 'test/e2e/participant-service.ts', [], {
      PORT: String(port),
      DATABASE_URL: cluster.connectionString(name),
      NAME: name,
      COORDINATOR_URL: api,
      TWOPC_API_TOKEN: TOKEN,
      TWOPC_PARTICIPANT_SECRET: SECRET,
    });
    await proc.start(/"ready":true/);
    return { proc, url: `http://127.0.0.1:${port}`, db: name };
  }

  async function createLedger(db: string): Promise<void> {
    await cluster.createDatabase(db);
    await cluster.withClient(async (c) => {
      await c.query(accountsTableSql({ balance: 'int', nonNegative: true }));
      await c.query('insert into accounts values (1, 100), (2, 100)');
      await c.query('create table transfers (ref text unique deferrable initially deferred)');
    }, db);
  }

  const balance = (db: string) => cluster.withClient(async (c) => Number((await c.query<{ balance: number }>('select balance from accounts where id = 1')).rows[0].balance), db);

  async function transfer(svc: Service, txId: string, amount: number): Promise<CarriedRegistration> {
    const res = await fetch(`${svc.url}/transfer`, {
      method: 'POST',
      headers: withCarriedTransaction(txId, { 'content-type': 'application/json' }),
      body: JSON.stringify({ account: 1, amount, ref: `${txId}-${svc.db}` }),
    });
    expect(res.status).toBe(200);
    const registration = registrationFrom(res);
    if (!registration) throw new Error(`${svc.db} answered no registration`);
    return registration;
  }

  /** A POST to the coordinator whose answer is held to its OpenAPI document. */
  async function postRaw(target: string, body: object): Promise<{ status: number; body: any }> {
    const res = await fetch(`${api}${target}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    const contentType = res.headers.get('content-type');
    contract.record({ method: 'POST', target, status: res.status, ...(contentType ? { contentType } : {}), body: text });
    return { status: res.status, body: JSON.parse(text) };
  }
  const commitRaw = (id: string, registrations: unknown[]) => postRaw(`/v1/transactions/${id}/commit`, { registrations });
  const abortRaw = (id: string, registrations: unknown[]) => postRaw(`/v1/transactions/${id}/abort`, { registrations });

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\ncoordinator:\n${coordinator.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'carried' });
    await Promise.all([createLedger('ledger_a'), createLedger('ledger_b')]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-carried-'));
    const config = path.join(dir, 'config.json');
    // A short timeout: a branch whose registration never reaches a commit ends by it.
    fs.writeFileSync(config, JSON.stringify({ engine: { carriedRegistration: true, defaultTimeoutMs: 3_000, commitWaitMs: 1_000, phaseTwoBaseDelayMs: 20, phaseTwoMaxDelayMs: 200, sweepIntervalMs: 0 } }));
    coordinator = new TsProcess('coordinator', 'coordinator/cli/main.ts', ['serve', '--config', config], {
      TWOPC_PORT: '0',
      TWOPC_DATA_DIR: path.join(dir, 'data'),
      TWOPC_API_TOKEN: TOKEN,
      TWOPC_PARTICIPANT_SECRET: SECRET,
      TWOPC_LOG_LEVEL: 'info',
    });
    const ready = await coordinator.start(/"port":(\d+).*"msg":"twopc coordinator ready"/);
    api = `http://127.0.0.1:${ready[1]}`;
    client = new CoordinatorClient({ url: api, token: TOKEN });
    contract = await ContractCheck.of(api);
    [a, b] = await Promise.all([startParticipant('ledger_a'), startParticipant('ledger_b')]);
  }, 120_000);

  afterAll(async () => {
    contract?.assertHeld({ minChecked: 10 });
    await client?.close();
    await Promise.allSettled([a?.proc.stop(), b?.proc.stop()]);
    await coordinator?.stop();
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await waitFor('no prepared transactions', async () => (await cluster.preparedGids('twopc')).length === 0);
    contract?.assertHeld();
  });

  it('commits a transfer across two services with no begin and no enlist; a retried commit is answered from the register', async () => {
    const [beforeA, beforeB] = [await balance(a.db), await balance(b.db)];
    const tx = await client.open({ carried: true });
    expect(tx.carried).toBe(true);
    const registrations = [await transfer(a, tx.id, -10), await transfer(b, tx.id, 10)];
    await expect(client.commit(tx.id, { registrations })).resolves.toMatchObject({ state: 'committed' });
    expect([await balance(a.db), await balance(b.db)]).toEqual([beforeA - 10, beforeB + 10]);
    await expect(client.commit(tx.id, { registrations })).resolves.toMatchObject({ state: 'committed' });
    expect([await balance(a.db), await balance(b.db)]).toEqual([beforeA - 10, beforeB + 10]);
  });

  it('knows nothing of a carried transaction before its commit (404, nothing decided); its branches end by their timeout, and a commit after that aborts (409)', async () => {
    const [beforeA, beforeB] = [await balance(a.db), await balance(b.db)];
    const tx = await client.open({ carried: true });
    const registrations = [await transfer(a, tx.id, -5), await transfer(b, tx.id, 5)];
    const asked = await fetch(`${api}/v1/transactions/${tx.id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(asked.status).toBe(404);
    // Never prepared: each service rolls its held branch back at its timeout, releasing the row.
    await waitFor('the held branches rolled back', async () => {
      const locked = await cluster.withClient(async (c) => (await c.query(`select count(*)::int as n from pg_stat_activity where state = 'idle in transaction'`)).rows[0].n as number);
      return locked === 0;
    });
    // The commit that comes too late records the branches, and each votes no: nothing committed.
    const res = await commitRaw(tx.id, registrations);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'transaction-aborted' });
    expect([await balance(a.db), await balance(b.db)]).toEqual([beforeA, beforeB]);
  });

  it('refuses a forged registration (400) and prepares nothing for it', async () => {
    const tx = await client.open({ carried: true });
    const real = await transfer(a, tx.id, -1);
    const forged = signRegistration('not-the-participant-secret', tx.id, { participant: 'ledger_a', url: 'http://127.0.0.1:1/twopc', branchId: 7, gid: `twopc_${tx.id.replace(/-/g, '')}_7` });
    const moved = { ...real, url: 'http://127.0.0.1:1/twopc' };
    for (const bad of [forged, moved]) {
      const res = await commitRaw(tx.id, [bad]);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'invalid-input', field: 'registrations.0.sig' });
    }
    // Signed with the secret, but with a URL the coordinator would refuse in an enlist: the refusal names the registration.
    const badUrl = signRegistration(SECRET, tx.id, { participant: 'ledger_a', url: 'ftp://127.0.0.1:1/twopc', branchId: 7, gid: `twopc_${tx.id.replace(/-/g, '')}_7` });
    await expect(commitRaw(tx.id, [badUrl])).resolves.toMatchObject({ status: 400, body: { code: 'invalid-input', field: 'registrations.0.url' } });
    await expect(client.abort(tx.id, { registrations: [badUrl] })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'registrations.0.url' }, message: expect.stringMatching(/nothing was aborted/) });
    // The real one still commits: nothing was recorded for the refused ones.
    await expect(client.commit(tx.id, { registrations: [real] })).resolves.toMatchObject({ state: 'committed' });
  });

  it('a carried abort rolls the held branches back at once: the rows are free right after its answer, long before the branches\' timeout, and a commit after it commits nothing', async () => {
    const [beforeA, beforeB] = [await balance(a.db), await balance(b.db)];
    const tx = await client.open({ carried: true });
    const registrations = [await transfer(a, tx.id, -3), await transfer(b, tx.id, 3)];
    const opened = Date.now();
    // Held: another transaction cannot take the row.
    const rowLocked = (db: string) =>
      cluster.withClient(async (c) => {
        await c.query('begin');
        try {
          await c.query(`set local lock_timeout = '300ms'`);
          await c.query('select balance from accounts where id = 1 for update');
          return false;
        } catch (e) {
          if ((e as { code?: string }).code === '55P03') return true;
          throw e;
        } finally {
          await c.query('rollback');
        }
      }, db);
    expect(await rowLocked(a.db)).toBe(true);
    await expect(client.abort(tx.id, { registrations, reason: 'the user cancelled' })).resolves.toEqual({ id: tx.id, state: 'aborted' });
    expect([await rowLocked(a.db), await rowLocked(b.db)]).toEqual([false, false]);
    // The branches' own timeout (3 s + heldGraceMs) is far off: it was the abort that released them.
    expect(Date.now() - opened).toBeLessThan(2_500);
    const status = await fetch(`${api}/v1/transactions/${tx.id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await status.json()).toMatchObject({ decision: 'abort', reason: { cause: 'application', message: 'the user cancelled' } });
    // A commit after the abort (a late retry, a confused client) is answered from the register: aborted.
    const res = await commitRaw(tx.id, registrations);
    expect(res).toMatchObject({ status: 409, body: { code: 'transaction-aborted' } });
    await expect(client.abort(tx.id, { registrations })).resolves.toMatchObject({ state: 'aborted' });
    expect([await balance(a.db), await balance(b.db)]).toEqual([beforeA, beforeB]);
  });

  it('answers 409 state-conflict to a carried abort after the commit, and refuses a forged registration on an abort (400) without recording anything', async () => {
    const tx = await client.open({ carried: true });
    const registrations = [await transfer(a, tx.id, -1), await transfer(b, tx.id, 1)];
    const forged = signRegistration('not-the-participant-secret', tx.id, { participant: 'ledger_a', url: 'http://127.0.0.1:1/twopc', branchId: 7, gid: `twopc_${tx.id.replace(/-/g, '')}_7` });
    await expect(abortRaw(tx.id, [forged])).resolves.toMatchObject({ status: 400, body: { code: 'invalid-input', field: 'registrations.0.sig' } });
    await expect(client.abort(tx.id, { registrations: [forged] })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'registrations.0.sig' } });
    const asked = await fetch(`${api}/v1/transactions/${tx.id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(asked.status).toBe(404);
    await expect(client.commit(tx.id, { registrations })).resolves.toMatchObject({ state: 'committed' });
    await expect(client.abort(tx.id, { registrations })).rejects.toMatchObject({ code: 'state-conflict' });
    await expect(abortRaw(tx.id, registrations)).resolves.toMatchObject({ status: 409, body: { code: 'state-conflict' } });
  });

  it('a carried commit and a carried abort of one id sent at once end in one outcome: both answers and both databases agree', async () => {
    for (let round = 0; round < 6; round++) {
      const [beforeA, beforeB] = [await balance(a.db), await balance(b.db)];
      const tx = await client.open({ carried: true });
      const registrations = [await transfer(a, tx.id, -2), await transfer(b, tx.id, 2)];
      // Either one sent first, by the round.
      const [commit, abort] =
        round % 2 === 0 ? await Promise.all([commitRaw(tx.id, registrations), abortRaw(tx.id, registrations)]) : (await Promise.all([abortRaw(tx.id, registrations), commitRaw(tx.id, registrations)])).reverse();
      const balances = [await balance(a.db), await balance(b.db)];
      if (commit.status === 200) {
        expect({ round, abort: abort.status, code: abort.body.code, balances }).toEqual({ round, abort: 409, code: 'state-conflict', balances: [beforeA - 2, beforeB + 2] });
      } else {
        expect({ round, commit: commit.status, code: commit.body.code, abort: abort.status, balances }).toEqual({ round, commit: 409, code: 'transaction-aborted', abort: 200, balances: [beforeA, beforeB] });
      }
    }
  });
});
