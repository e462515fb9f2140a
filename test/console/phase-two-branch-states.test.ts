import fs from 'node:fs';
import path from 'node:path';
import { ADMIN_TOKEN, SECRET, startTestService, waitFor, type TestService } from '../service/service-fixture';
import { TestParticipant } from '../service/test-participant';

// The console's Branches table shows what the admin API says of each branch. While phase 2 runs, a branch
// that acknowledged the decision is committed (or rolled back), not still "prepared" like the ones left to do:
// both where the transaction is live here and where phase 2 runs from the log only (recovery after a restart).

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
// Phase-2 retries 10 minutes apart: a branch that failed once stays to do for the whole test.
const SLOW_RETRIES = { phaseTwoBaseDelayMs: 600_000, phaseTwoMaxDelayMs: 600_000, commitWaitMs: 300 };

describe('branch states in the admin API while phase 2 runs', () => {
  let a: TestParticipant;
  let b: TestParticipant;
  const services: TestService[] = [];

  beforeAll(async () => {
    a = await new TestParticipant(SECRET).start();
    b = await new TestParticipant(SECRET).start();
  });

  afterEach(() => {
    b.behaviour = () => 'normal';
  });

  afterAll(async () => {
    for (const svc of services) await svc.close();
    await a?.stop();
    await b?.stop();
  });

  async function start(overrides: Record<string, unknown> = {}): Promise<TestService> {
    const svc = await startTestService(overrides, SLOW_RETRIES);
    services.push(svc);
    return svc;
  }

  async function twoBranches(svc: TestService): Promise<string> {
    const id: string = (await svc.call('POST', '/v1/transactions', {})).body.id;
    await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger_a', url: a.url });
    await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'ledger_b', url: b.url });
    return id;
  }

  const branchStates = async (svc: TestService, id: string) => {
    const shown = await svc.call('GET', `/v1/admin/transactions/${id}`, undefined, admin);
    expect(shown.status).toBe(200);
    return shown.body.branches.map((x: { participant: string; state: string }) => [x.participant, x.state]);
  };
  const listedStates = async (svc: TestService, id: string) => {
    const list = (await svc.call('GET', '/v1/admin/transactions?state=in-doubt&limit=1000', undefined, admin)).body;
    const tx = list.transactions.find((t: { id: string }) => t.id === id);
    return tx.branches.map((x: { participant: string; state: string }) => [x.participant, x.state]);
  };

  it('a committed branch shows committed while another still waits for its COMMIT PREPARED (live here)', async () => {
    const svc = await start();
    const id = await twoBranches(svc);
    const commitsOnA = a.ops('commit').length;
    b.behaviour = (op) => (op === 'commit' ? 'fail' : 'normal');
    expect((await svc.call('POST', `/v1/transactions/${id}/commit`)).status).toBe(202);
    expect(a.ops('commit').length - commitsOnA).toBe(1);
    const expected = [
      ['ledger_a', 'committed'],
      ['ledger_b', 'prepared'],
    ];
    expect(await branchStates(svc, id)).toEqual(expected);
    expect(await listedStates(svc, id)).toEqual(expected);
  });

  it('a rolled-back branch shows rolled back while another still waits for its rollback (live here)', async () => {
    const svc = await start();
    const id = await twoBranches(svc);
    b.behaviour = (op) => (op === 'rollback' ? 'fail' : 'normal');
    expect((await svc.call('POST', `/v1/transactions/${id}/abort`)).status).toBe(200);
    expect(await branchStates(svc, id)).toEqual([
      ['ledger_a', 'rolled-back'],
      ['ledger_b', 'active'],
    ]);
  });

  it('after a restart, phase 2 run by recovery from the log shows the branches it finished as committed', async () => {
    const first = await startTestService({}, SLOW_RETRIES);
    try {
      const id = await twoBranches(first);
      const commitsOnA = a.ops('commit').length;
      b.behaviour = (op) => (op === 'commit' ? 'fail' : 'normal');
      expect((await first.call('POST', `/v1/transactions/${id}/commit`)).status).toBe(202);
      // The same log, read by a new process: the transaction is no longer live anywhere, only in the log.
      await first.service.close();
      const second = await start({ dataDir: path.join(first.dir, 'data') });
      // Recovery at start drives it: a acknowledges again (idempotent), b fails and waits 10 minutes.
      const phaseTwo = async () => (await second.call('GET', `/v1/admin/transactions/${id}/phase-two`, undefined, admin)).body;
      await waitFor("recovery's COMMIT on a and its failed one on b", async () => a.ops('commit').length - commitsOnA === 2 && (await phaseTwo()).branches.length > 0);
      expect(await phaseTwo()).toMatchObject({ driving: true, branches: [{ participant: 'ledger_b', failedAttempts: 1 }] });
      const expected = [
        ['ledger_a', 'committed'],
        ['ledger_b', 'prepared'],
      ];
      expect(await branchStates(second, id)).toEqual(expected);
      expect(await listedStates(second, id)).toEqual(expected);
    } finally {
      fs.rmSync(first.dir, { recursive: true, force: true });
    }
  });
});
