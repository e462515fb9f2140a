import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { loadServiceConfig } from '../../coordinator/assembly/service-config';
import { startTestService } from './service-fixture';

/**
 * Issue 16, item 4: the listen backlog is sized for bursts and configurable.
 * Node's default (511) made the kernel drop SYNs when 1,000 clients connected
 * at once (the load script's `burst` scenario shows the before and after).
 */

/** The accept-queue size the kernel gives a listening socket on `port` (ss's Send-Q for a listener), capped by net.core.somaxconn. */
function listenQueue(port: number): number {
  const out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  const fields = out.trim().split(/\s+/);
  return Number(fields[2]);
}

const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
const linux = process.platform === 'linux';

describe('twopc serve listen backlog', () => {
  it('defaults to 4096, reads TWOPC_LISTEN_BACKLOG and http.listenBacklog, and names the field when invalid', () => {
    expect(loadServiceConfig({ env: {} }).http.listenBacklog).toBe(4096);
    expect(loadServiceConfig({ env: { TWOPC_LISTEN_BACKLOG: '1000' } }).http.listenBacklog).toBe(1000);
    expect(() => loadServiceConfig({ env: { TWOPC_LISTEN_BACKLOG: '0' } })).toThrow(/http.listenBacklog must be >= 1/);
    expect(loadServiceConfig({ env: { TWOPC_KEEP_ALIVE_TIMEOUT_MS: '30000' } }).http.keepAliveTimeoutMs).toBe(30_000);
    expect(() => loadServiceConfig({ env: { TWOPC_KEEP_ALIVE_TIMEOUT_MS: '999999' } })).toThrow(/http.keepAliveTimeoutMs must be <= 120000/);
  });

  (linux ? it : it.skip)('listens with the configured backlog (what the kernel reports for the socket)', async () => {
    const wanted = Math.min(1234, somaxconn);
    const svc = await startTestService({ http: { bodyLimitBytes: 16 * 1024, shutdownTimeoutMs: 2_000, listenBacklog: wanted } });
    try {
      expect(listenQueue(svc.service.port)).toBe(wanted);
    } finally {
      await svc.close();
    }
    const byDefault = await startTestService();
    try {
      // A scrape every 15 s finds its kept-alive connection still open (Node's default closes it after 5 s).
      expect(byDefault.service.server.keepAliveTimeout).toBe(65_000);
      expect(byDefault.service.server.headersTimeout).toBeGreaterThan(65_000);
      // Node's own default is 511: the kernel reports the default 4096 (or somaxconn, if lower).
      expect(listenQueue(byDefault.service.port)).toBe(Math.min(4096, somaxconn));
    } finally {
      await byDefault.close();
    }
  });
});
