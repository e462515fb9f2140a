import fs from 'node:fs';
import { TsProcess } from '../e2e/processes';
import { ContractCheck } from '../support/contract-check';
import { ContractProxy } from '../support/contract-proxy';
import { jsonOf, runCli, tempDir } from './cli-fixture';

/**
 * Right after `npm start` (`twopc serve` on 127.0.0.1 with no token
 * configured) the coordinator generates its tokens and logs them: the API
 * token for services, and an admin token of its own for `twopc --url`. The
 * operator copies the admin token from the log and the CLI works; the API
 * token still does not open the admin API. Every answer is held to the
 * coordinator's own /openapi.json (through a proxy).
 */
describe('twopc --url right after npm start (no token configured, loopback)', () => {
  let dir: string;
  let coordinator: TsProcess;
  let contract: ContractCheck;
  let proxy: ContractProxy;
  let url: string;
  let tokens: { level: number; msg: string; apiToken: string; adminToken: string };

  beforeAll(async () => {
    dir = tempDir('fresh');
    coordinator = new TsProcess('coordinator', 'coordinator/cli/main.ts', ['serve'], {
      TWOPC_DATA_DIR: dir,
      TWOPC_PORT: '0',
      TWOPC_LOG_LEVEL: 'info',
      TWOPC_API_TOKEN: '',
      TWOPC_ADMIN_TOKEN: '',
    });
    const ready = await coordinator.start(/"port":(\d+).*"msg":"twopc coordinator ready"/);
    contract = await ContractCheck.of(`http://127.0.0.1:${ready[1]}`);
    proxy = await ContractProxy.start(`http://127.0.0.1:${ready[1]}`, contract);
    url = proxy.url;
    const warning = coordinator.log.split('\n').find((line) => line.includes('"apiToken":'));
    if (!warning) throw new Error(`no generated tokens in the log:\n${coordinator.log}`);
    tokens = JSON.parse(warning);
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await coordinator?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    contract?.assertHeld({ minChecked: 6 });
  });

  it('logs an API token and a distinct admin token, each with what it opens', () => {
    expect(tokens).toMatchObject({ level: 40, apiToken: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/), adminToken: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/) });
    expect(tokens.adminToken).not.toBe(tokens.apiToken);
    expect(tokens.msg).toMatch(/apiToken for \/v1 .*adminToken opens \/v1\/admin and `twopc <command> --url` \(TWOPC_ADMIN_TOKEN\)/);
  });

  it('twopc list --url works with the logged admin token; the API token does not open the admin API', async () => {
    const [admin, api, none] = await Promise.all([
      runCli(['list', '--url', url, '--json'], { TWOPC_ADMIN_TOKEN: tokens.adminToken ?? '' }),
      runCli(['list', '--url', url, '--json'], { TWOPC_ADMIN_TOKEN: tokens.apiToken }),
      runCli(['list', '--url', url, '--json']),
    ]);
    expect(admin.code).toBe(0);
    expect(jsonOf(admin)).toEqual({ transactions: [], truncated: false, total: 0 });
    expect([api.code, jsonOf(api).error.code, none.code]).toEqual([3, 'unauthorized', 3]);

    // The API token opens /v1 (what services use), the admin token too (as a configured one does).
    const status = async (token: string) => (await fetch(`${url}/v1/transactions`, { headers: { authorization: `Bearer ${token}` } })).status;
    expect([await status(tokens.apiToken), await status(tokens.adminToken), await status('wrong-token-0123456789')]).toEqual([200, 200, 401]);
  });
});
