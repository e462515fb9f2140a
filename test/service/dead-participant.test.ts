import net from 'node:net';
import { startTestService, TestService, waitFor } from './service-fixture';
import { SECRET } from './service-fixture';
import { TestParticipant } from './test-participant';

/** A participant service that accepts connections, reads what it gets, and never answers: connections counted. */
async function deadServer() {
  let accepted = 0;
  let open = 0;
  let maxOpen = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted += 1;
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    sockets.add(s);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => {
      open -= 1;
      sockets.delete(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/twopc`,
    port,
    stats: () => ({ accepted, open, maxOpen }),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const TXS = 24;

describe('a participant that accepts connections and never answers (issue 16.3)', () => {
  let svc: TestService;
  let healthy: TestParticipant;
  let dead: Awaited<ReturnType<typeof deadServer>>;

  beforeAll(async () => {
    healthy = await new TestParticipant(SECRET).start();
    dead = await deadServer();
    svc = await startTestService({ participantCalls: { prepareTimeoutMs: 1_500, phaseTwoTimeoutMs: 300, statusTimeoutMs: 300, connectTimeoutMs: 1_000 } }, { phaseTwoBaseDelayMs: 20, phaseTwoMaxDelayMs: 200, commitWaitMs: 200 });
  });
  afterAll(async () => {
    await svc?.close();
    await Promise.all([healthy?.stop(), dead?.close()]);
  });

  it('bounds connections to it, aborts its transactions naming it (not its address), and retries their rollbacks at a capped rate', async () => {
    const ids: string[] = [];
    for (let i = 0; i < TXS; i += 1) {
      const { body } = await svc.call('POST', '/v1/transactions', {});
      ids.push(body.id);
      for (const [participant, url] of [['healthy', healthy.url], ['stub-dead', dead.url]]) {
        expect((await svc.call('POST', `/v1/transactions/${body.id}/branches`, { participant, url, prepare: 'held' })).status).toBe(201);
      }
    }
    const commits = await Promise.all(ids.map((id) => svc.call('POST', `/v1/transactions/${id}/commit`)));
    for (const c of commits) {
      expect(c.status).toBe(409);
      expect(c.body).toMatchObject({ code: 'transaction-aborted', reason: { participant: 'stub-dead' } });
      const text = JSON.stringify(c.body);
      expect(text).not.toContain(String(dead.port));
      expect(text).not.toContain('127.0.0.1');
    }
    for (const id of ids) expect((await svc.call('GET', `/v1/transactions/${id}`)).body.state).toBe('aborted');
    // The healthy branches are rolled back; the dead one's rollbacks go on, at a rate that does not grow with the transactions.
    await waitFor('healthy branches rolled back', () => healthy.ops('rollback').length >= TXS);
    const before = dead.stats().accepted;
    await new Promise((r) => setTimeout(r, 2_000));
    const during = dead.stats().accepted - before;
    // Unguarded: every one of the 24 rollbacks takes a new connection per 300 ms timeout (≈ 24 × 2000 / 400 ≈ 120).
    // Guarded: only the probes (2) are sent at once, so at most ≈ 2 × 2000 / 300 ≈ 14 connections.
    expect(during).toBeGreaterThan(0);
    expect(during).toBeLessThanOrEqual(20);
    expect(dead.stats().maxOpen).toBeLessThanOrEqual(TXS + 2);
    const metrics = String((await svc.call('GET', '/metrics')).body);
    expect(Number(/^twopc_in_doubt (\d+)/m.exec(metrics)?.[1])).toBe(TXS);
  }, 30_000);
});
