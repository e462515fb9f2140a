import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunningService, startService, type ServiceHooks } from '../../coordinator/service/serve';
import { loadServiceConfig } from '../../coordinator/assembly/service-config';

export const API_TOKEN = 'test-api-token-0123456789';
export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const SECRET = 'test-participant-secret-0123456789';

export interface TestService {
  service: RunningService;
  base: string;
  dir: string;
  /** fetch against the service with the API token (unless `headers.authorization` is given). */
  call(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/**
 * A coordinator service as `twopc serve` runs it (config file → loadServiceConfig
 * → startService), on a free port with its own temporary file log. Engine
 * timings are shortened so phase-2 retries and timeouts happen within a test.
 */
export async function startTestService(overrides: Record<string, unknown> = {}, engine: Record<string, unknown> = {}, hooks: ServiceHooks = {}): Promise<TestService> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-service-'));
  const file = path.join(dir, 'config.json');
  const config = {
    host: '127.0.0.1',
    port: 0,
    dataDir: path.join(dir, 'data'),
    logLevel: process.env.TWOPC_TEST_LOG ?? 'silent',
    apiToken: API_TOKEN,
    adminToken: ADMIN_TOKEN,
    participantSecret: SECRET,
    participantCalls: { prepareTimeoutMs: 2_000, phaseTwoTimeoutMs: 2_000, statusTimeoutMs: 1_000, connectTimeoutMs: 1_000 },
    http: { bodyLimitBytes: 16 * 1024, shutdownTimeoutMs: 2_000 },
    ...overrides,
    engine: { sweepIntervalMs: 0, phaseTwoBaseDelayMs: 5, phaseTwoMaxDelayMs: 50, commitWaitMs: 1_000, ...engine },
  };
  fs.writeFileSync(file, JSON.stringify(config));
  const service = await startService(loadServiceConfig({ file, env: {} }), hooks);
  const base = `http://127.0.0.1:${service.port}`;
  return {
    service,
    base,
    dir,
    async call(method, p, body, headers = {}) {
      const init: RequestInit = { method, headers: { authorization: `Bearer ${API_TOKEN}`, ...headers } };
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
      }
      const res = await fetch(`${base}${p}`, init);
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // metrics and other text answers stay text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await service.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
