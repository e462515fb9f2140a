import { Client } from 'undici';
import { parsePromText } from './prom-text';
import { loadAverage, readCpuMs, readLogDir, readMemory } from './proc-stats';
import type { Timeline } from './timeline';

/**
 * Once a second: the coordinator's RSS and CPU from /proc, the machine's load
 * average and the log directory's size. Every `scrapeSeconds`: its
 * `/metrics` (event-loop lag as prom-client sees it, live and in-doubt
 * transactions), one scrape at a time, timed.
 */
export class Sampler {
  private timer?: NodeJS.Timeout;
  private lastCpu?: { at: number; ms: number };
  private scraping = false;
  private lastScrape = 0;
  private readonly metrics: Client;

  constructor(
    private readonly timeline: Timeline,
    private readonly pid: number,
    baseUrl: string,
    private readonly logDir: string,
    private readonly scrapeSeconds: number,
  ) {
    this.metrics = new Client(baseUrl, { pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 });
  }

  start(): void {
    const tick = () => {
      this.sample();
      this.timer = setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
    };
    this.timer = setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  }

  /** Just after a second ends: what the coordinator looked like at the end of it. */
  private sample(): void {
    const now = Date.now();
    const s = this.timeline.second(Math.floor(now / 1000) - 1);
    const mem = readMemory(this.pid);
    if (mem) s.rssKiB = mem.rssKiB;
    const cpu = readCpuMs(this.pid);
    if (cpu !== undefined) {
      if (this.lastCpu && now > this.lastCpu.at) s.cpuPct = ((cpu - this.lastCpu.ms) / (now - this.lastCpu.at)) * 100;
      this.lastCpu = { at: now, ms: cpu };
    }
    s.load1 = loadAverage();
    s.logDir = readLogDir(this.logDir);
    if (this.scrapeSeconds > 0 && !this.scraping && now - this.lastScrape >= this.scrapeSeconds * 1000 - 100) {
      this.lastScrape = now;
      void this.scrape();
    }
  }

  private async scrape(): Promise<void> {
    this.scraping = true;
    const started = performance.now();
    try {
      const res = await this.metrics.request({ path: '/metrics', method: 'GET' });
      const text = await res.body.text();
      const m = parsePromText(text);
      const ms = (name: string) => (m.has(name) ? m.get(name)! * 1000 : undefined);
      const s = this.timeline.second(Math.floor(Date.now() / 1000));
      s.prom = {
        scrapeMs: performance.now() - started,
        lagP99Ms: ms('nodejs_eventloop_lag_p99_seconds'),
        lagMaxMs: ms('nodejs_eventloop_lag_max_seconds'),
        live: m.get('twopc_live_transactions'),
        inDoubt: m.get('twopc_in_doubt'),
        heapUsedMiB: m.has('nodejs_heap_size_used_bytes') ? m.get('nodejs_heap_size_used_bytes')! / 2 ** 20 : undefined,
        phaseTwoRetries: m.get('twopc_phase_two_retries_total'),
      };
    } catch {
      // A scrape that fails (the coordinator stopping) leaves a gap in the series.
    } finally {
      this.scraping = false;
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.metrics.destroy().catch(() => undefined);
  }
}
