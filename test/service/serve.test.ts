import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { resolveApiAuth } from '../../coordinator/service/api-tokens';
import { createApp } from '../../coordinator/service/app';
import { IdempotencyStore } from '../../coordinator/service/idempotency';
import { CoordinatorMetrics } from '../../coordinator/service/metrics';
import { loadServiceConfig } from '../../coordinator/assembly/service-config';
import { participantsFromConfig } from '../../coordinator/assembly/participants-from-config';
import { SECRET, startTestService } from './service-fixture';
import { TestParticipant } from './test-participant';

const ROOT = path.resolve(__dirname, '../..');

function configError(env: Record<string, string>, file?: object): { field?: unknown; message: string } {
  let path_: string | undefined;
  if (file) {
    path_ = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-config-')), 'c.json');
    fs.writeFileSync(path_, JSON.stringify(file));
  }
  try {
    loadServiceConfig({ env, file: path_ });
  } catch (e) {
    return { field: (e as { details: { field?: unknown } }).details.field, message: (e as Error).message };
  }
  throw new Error('config was accepted');
}

describe('twopc serve: configuration, tokens, readiness, shutdown', () => {
  it('validates settings once, naming the field (and never echoing a secret)', () => {
    expect(configError({ TWOPC_API_TOKEN: 'short-secret' })).toEqual({ field: 'apiToken', message: expect.stringMatching(/apiToken.*TWOPC_API_TOKEN.*at least 16/) });
    expect(configError({ TWOPC_API_TOKEN: 'short-secret' }).message).not.toContain('short-secret');
    expect(configError({ TWOPC_PARTICIPANT_SECRET: 'x' }).field).toBe('participantSecret');
    expect(configError({ TWOPC_INSECURE: 'maybe' }).field).toBe('TWOPC_INSECURE');
    expect(configError({ TWOPC_PARTICIPANT_URL_ALLOW_LIST: 'http://ok:1,ftp://bad' }).field).toBe('participantUrlAllowList.1');
    expect(configError({}, { participantCalls: { prepareTimeoutMs: -1 } })).toEqual({ field: 'participantCalls.prepareTimeoutMs', message: expect.stringMatching(/>= 1/) });
    expect(configError({}, { http: { bodyLimitBytes: 1 } }).field).toBe('http.bodyLimitBytes');
    expect(configError({}, { idempotency: { ttl: 5 } })).toEqual({ field: 'idempotency.ttl', message: expect.stringMatching(/unknown setting/) });
    const config = loadServiceConfig({ env: { TWOPC_API_TOKEN: 'a'.repeat(16), TWOPC_PARTICIPANT_URL_ALLOW_LIST: 'http://a:1/x, https://b', TWOPC_INSECURE: 'false' } });
    expect(config).toMatchObject({ apiToken: 'a'.repeat(16), participantUrlAllowList: ['http://a:1/x', 'https://b'], insecure: false, http: { bodyLimitBytes: 65536 } });
    expect(Object.isFrozen(config) && Object.isFrozen(config.participantCalls)).toBe(true);
  });

  it('commitProof of the configured databases: xid by default, marker by setting, anything else refused naming it; the databases get it', async () => {
    const token = { TWOPC_API_TOKEN: 'a'.repeat(16) };
    expect(loadServiceConfig({ env: token }).commitProof).toBe('xid');
    expect(loadServiceConfig({ env: { ...token, TWOPC_COMMIT_PROOF: 'marker' } }).commitProof).toBe('marker');
    expect(configError(token, { commitProof: 'both' })).toEqual({ field: 'commitProof', message: expect.stringMatching(/commitProof must be one of marker, xid/) });
    for (const proof of ['marker', 'xid']) {
      const config = loadServiceConfig({ env: { ...token, TWOPC_COMMIT_PROOF: proof, TWOPC_DATABASES: 'ledger=postgres://127.0.0.1:9/ledger' } });
      const built = await participantsFromConfig(config, { poolSize: 1, onIdleError: () => undefined, start: false });
      const [ledger] = built.registry.all();
      expect((ledger as unknown as { env: { commitProof: string } }).env.commitProof).toBe(proof);
      await built.close();
    }
  });

  it('API tokens: configured, generated for a loopback listener (with an admin token of its own), refused elsewhere unless insecure', () => {
    const [a, b] = ['a'.repeat(16), 'b'.repeat(16)];
    expect(resolveApiAuth({ host: '0.0.0.0', apiToken: a, adminToken: b, insecure: false })).toEqual({ tokens: [a, b], adminToken: b, insecure: false });
    // A deployment that chose its API token gets the admin API only with an admin token it chose.
    expect(resolveApiAuth({ host: '127.0.0.1', apiToken: a, insecure: false })).toEqual({ tokens: [a], insecure: false });
    const generated = resolveApiAuth({ host: '127.0.0.1', insecure: false });
    const { apiToken, adminToken } = generated.generated!;
    expect([apiToken, adminToken]).toEqual([expect.stringMatching(/^[A-Za-z0-9_-]{32}$/), expect.stringMatching(/^[A-Za-z0-9_-]{32}$/)]);
    expect(adminToken).not.toBe(apiToken);
    expect(generated).toEqual({ tokens: [apiToken, adminToken], adminToken, generated: { apiToken, adminToken }, insecure: false });
    // A configured admin token is kept; only the API token is generated.
    expect(resolveApiAuth({ host: '::1', adminToken: b, insecure: false })).toEqual({ tokens: [expect.any(String), b], adminToken: b, generated: { apiToken: expect.any(String) }, insecure: false });
    expect(() => resolveApiAuth({ host: '0.0.0.0', insecure: false })).toThrow(/TWOPC_API_TOKEN.*--insecure/);
    expect(resolveApiAuth({ host: '0.0.0.0', insecure: true })).toEqual({ tokens: [], insecure: true });
  });

  it('before recovery has finished, /readyz and the API answer 503', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-ready-'));
    const engine = new TransactionEngine({ log: new FileDecisionLog({ dir }), participants: new ParticipantRegistry(), config: parseEngineConfig({}) });
    const app = createApp({
      engine,
      metrics: new CoordinatorMetrics({ inDoubt: () => 0, live: () => 0 }),
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      apiTokens: [],
      idempotency: new IdempotencyStore({ ttlMs: 1000, maxKeys: 10 }),
      bodyLimitBytes: 1024,
      participantUrls: { enabled: false, allowList: [] },
      version: 'test',
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const res = await fetch(`${base}/v1/transactions`, { method: 'POST' });
      expect([res.status, res.headers.get('retry-after'), ((await res.json()) as { code: string }).code]).toEqual([503, '1', 'not-ready']);
    } finally {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('graceful shutdown lets a commit in flight finish, then closes the log', async () => {
    const a = await new TestParticipant(SECRET).start();
    const b = await new TestParticipant(SECRET).start();
    const svc = await startTestService();
    try {
      const id = (await svc.call('POST', '/v1/transactions')).body.id;
      await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'a', url: a.url });
      const gb = (await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'b', url: b.url })).body.gid;
      b.delay = (op) => (op === 'prepare' ? 400 : 0);
      const commit = svc.call('POST', `/v1/transactions/${id}/commit`);
      await new Promise((r) => setTimeout(r, 100));
      const closing = svc.service.close();
      // The commit was in flight when shutdown began: it still reaches its decision and its answer.
      expect((await commit).status).toBe(200);
      await closing;
      expect(b.states.get(gb)).toBe('committed');
      expect(svc.service.engine.ready).toBe(false);
      await expect(fetch(`${svc.base}/healthz`)).rejects.toThrow();
    } finally {
      await svc.close();
      await a.stop();
      await b.stop();
    }
  });
});

describe('twopc serve as a process (what npm start runs)', () => {
  let child: ChildProcess | undefined;
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-serve-'));
  });
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function serve(args: string[], env: Record<string, string>): { output: () => string; exited: Promise<number | null> } {
    let output = '';
    const proc = spawn(process.execPath, ['--import', 'tsx', 'coordinator/cli/main.ts', 'serve', ...args], {
      cwd: ROOT,
      env: { ...process.env, TWOPC_DATA_DIR: path.join(dir, 'data'), TWOPC_PORT: '0', TWOPC_LOG_LEVEL: 'info', TWOPC_API_TOKEN: '', TWOPC_HOST: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    return { output: () => output, exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
  }

  async function waitForLine(output: () => string, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = output().match(pattern);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('with no configuration: generates and logs a token, logs the ready line with the port, refuses calls without the token, stops on SIGTERM', async () => {
    const run = serve([], {});
    const ready = await waitForLine(run.output, /"port":(\d+).*"msg":"twopc coordinator ready"/);
    const token = (await waitForLine(run.output, /"apiToken":"([A-Za-z0-9_-]+)"/))[1];
    const base = `http://127.0.0.1:${ready[1]}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/v1/transactions`, { method: 'POST' })).status).toBe(401);
    expect((await fetch(`${base}/v1/transactions`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(201);
    child!.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('twopc coordinator stopped');
  });

  it('refuses a non-loopback listener without a token (exit code 3, naming the settings)', async () => {
    const run = serve(['--host', '0.0.0.0'], {});
    expect(await run.exited).toBe(3);
    expect(run.output()).toMatch(/apiToken: .*TWOPC_API_TOKEN.*--insecure.*\[invalid-config\]/);
  });
});
