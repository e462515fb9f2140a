import { Client } from 'undici';

/**
 * Event-loop stalls as a client sees them: one `GET /healthz` at a time on
 * its own kept-alive connection, the next `intervalMs` after the last answer.
 * /healthz does no work, so its latency is the time the coordinator's event
 * loop took to get to it (plus its queue of other requests). prom-client's
 * `nodejs_eventloop_lag_*` come from a histogram reset at each scrape, whose
 * p99 hides a single 250 ms stall among the thousands of 10 ms samples of a
 * scrape interval; this probe does not.
 */
export class HealthzProbe {
  private readonly client: Client;
  private running = true;
  private loop?: Promise<void>;

  constructor(
    baseUrl: string,
    private readonly intervalMs: number,
    private readonly onSample: (latencyUs: number | undefined, at: number) => void,
  ) {
    this.client = new Client(baseUrl, { pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 60_000, bodyTimeout: 60_000, connect: { timeout: 30_000 } });
  }

  start(): void {
    this.loop = (async () => {
      while (this.running) {
        const started = performance.now();
        let latency: number | undefined;
        try {
          const res = await this.client.request({ path: '/healthz', method: 'GET' });
          await res.body.dump();
          latency = (performance.now() - started) * 1000;
        } catch {
          latency = undefined;
        }
        if (!this.running) break;
        this.onSample(latency, Date.now());
        await new Promise((resolve) => setTimeout(resolve, latency === undefined ? 200 : this.intervalMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.client.destroy().catch(() => undefined);
    await this.loop;
  }
}
