import { chaosServiceHooks, TEST_LOG_FAULT_ENV } from '../../chaos/test-switches';
import { scrapeMetrics } from './metrics-text';
import { SECRET, startTestService, waitFor, type TestService } from './service-fixture';
import { TestParticipant } from './test-participant';

/**
 * The gauges operators alert on (ops/prometheus/twopc-alerts.yml), scraped
 * from a real `twopc serve`: readiness, the decision log's failure, and the
 * age of the oldest in-doubt transaction.
 */
describe('twopc serve /metrics: the gauges the alerts read', () => {
  const gauge = async (svc: TestService, name: string) => {
    const value = (await scrapeMetrics(svc.base)).samples.get(name);
    if (value === undefined) throw new Error(`${name} is not in /metrics`);
    return value;
  };

  it('a transaction whose participant stays down shows a growing oldest-in-doubt age, retries by participant; 0 once it completes', async () => {
    const a = await new TestParticipant(SECRET).start();
    const b = await new TestParticipant(SECRET).start();
    const svc = await startTestService();
    try {
      expect(await gauge(svc, 'twopc_ready')).toBe(1);
      expect(await gauge(svc, 'twopc_decision_log_failed')).toBe(0);
      expect(await gauge(svc, 'twopc_oldest_in_doubt_seconds')).toBe(0);
      // The admission queue (service/admission.ts): nothing served or waiting between requests.
      expect(await gauge(svc, 'twopc_http_transaction_requests{state="in-progress"}')).toBe(0);
      expect(await gauge(svc, 'twopc_http_transaction_requests{state="queued"}')).toBe(0);

      let down = true;
      b.behaviour = (op) => (op === 'commit' && down ? 'fail' : 'normal');
      const id = (await svc.call('POST', '/v1/transactions')).body.id;
      await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'a', url: a.url });
      await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'b', url: b.url });
      expect((await svc.call('POST', `/v1/transactions/${id}/commit`)).status).toBe(202);

      const first = await gauge(svc, 'twopc_oldest_in_doubt_seconds');
      expect(first).toBeGreaterThan(0);
      // Still in doubt while b stays down, so the age keeps growing from the transaction's begin.
      await waitFor('the oldest in-doubt age to grow', async () => (await gauge(svc, 'twopc_oldest_in_doubt_seconds')) > first + 0.2);
      expect(await gauge(svc, 'twopc_in_doubt')).toBe(1);
      expect(await gauge(svc, 'twopc_phase_two_retries_total{participant="b"}')).toBeGreaterThan(0);
      expect(await gauge(svc, 'twopc_ready')).toBe(1);

      down = false;
      await waitFor('phase 2 to finish', async () => (await svc.call('GET', `/v1/transactions/${id}`)).body.state === 'completed');
      // The `complete` record is written after the answer: the listing may show the transaction a moment longer.
      await waitFor('the oldest in-doubt age back to 0', async () => (await gauge(svc, 'twopc_oldest_in_doubt_seconds')) === 0);
      expect(await gauge(svc, 'twopc_in_doubt')).toBe(0);
    } finally {
      await svc.close();
      await a.stop();
      await b.stop();
    }
  });

  it('a failing disk flips twopc_decision_log_failed and twopc_ready; the in-doubt age is NaN (unknown), and /metrics still answers', async () => {
    // The switch is read once, at start, from the environment (NODE_ENV=test under jest), as the chaos harness's coordinator reads it.
    process.env[TEST_LOG_FAULT_ENV] = 'write:ENOSPC:3';
    let svc: TestService;
    try {
      svc = await startTestService({}, {}, chaosServiceHooks(process.env));
    } finally {
      delete process.env[TEST_LOG_FAULT_ENV];
    }
    const p = await new TestParticipant(SECRET).start();
    try {
      expect(await gauge(svc, 'twopc_decision_log_failed')).toBe(0);
      await waitFor('the log to fail', async () => {
        // A begin alone writes nothing on a single-instance log (it rides with the first enlist).
        const id = (await svc.call('POST', '/v1/transactions')).body?.id;
        if (id) await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'p', url: p.url });
        return (await fetch(`${svc.base}/readyz`)).status === 503;
      });
      expect(await gauge(svc, 'twopc_decision_log_failed')).toBe(1);
      expect(await gauge(svc, 'twopc_ready')).toBe(0);
      expect(await gauge(svc, 'twopc_oldest_in_doubt_seconds')).toBeNaN();
    } finally {
      await svc.close();
      await p.stop();
    }
  });
});
