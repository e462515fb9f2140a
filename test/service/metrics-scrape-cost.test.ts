import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { scrapeMetrics } from './metrics-text';
import { SECRET, startTestService } from './service-fixture';
import { TestParticipant } from './test-participant';

/**
 * Issue 16, item 2: a /metrics scrape stays cheap whatever the number of
 * live transactions. It used to list (snapshot, sort) every live and
 * unfinished transaction for the oldest-in-doubt and hazard gauges, which
 * took 1.2–2.8 s of event loop at 50,000 active transactions.
 */
describe('twopc serve /metrics: the cost of a scrape', () => {
  afterEach(() => jest.restoreAllMocks());

  it('reads neither the listing of unfinished transactions nor any snapshot, with hundreds live', async () => {
    const a = await new TestParticipant(SECRET).start();
    const svc = await startTestService();
    try {
      const ids: string[] = [];
      for (let i = 0; i < 300; i++) {
        const id = (await svc.call('POST', '/v1/transactions')).body.id as string;
        await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'a', url: a.url, prepare: 'held' });
        ids.push(id);
      }
      const unfinished = jest.spyOn(FileDecisionLog.prototype, 'unfinished');
      const get = jest.spyOn(FileDecisionLog.prototype, 'get');
      const scrape = await scrapeMetrics(svc.base);
      expect(scrape.samples.get('twopc_live_transactions')).toBe(300);
      expect(scrape.samples.get('twopc_oldest_in_doubt_seconds')).toBe(0);
      expect(scrape.samples.get('twopc_transactions_with_hazards')).toBe(0);
      expect(scrape.samples.get('twopc_log_held_transactions{form="in-full"}')).toBe(300);
      expect(scrape.samples.get('twopc_log_held_transactions{form="outcome"}')).toBe(0);
      // The event-loop lag is exported (prom-client's monitorEventLoopDelay histogram).
      expect(scrape.samples.get('nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
      expect(unfinished).not.toHaveBeenCalled();
      expect(get).not.toHaveBeenCalled();
      for (const id of ids.slice(0, 5)) await svc.call('POST', `/v1/transactions/${id}/abort`, {});
    } finally {
      await svc.close();
      await a.stop();
    }
  });
});
