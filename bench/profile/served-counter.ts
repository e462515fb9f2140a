import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express } from 'express';
import { request } from 'undici';

/** The path a bench process answers its served-request count at (the read itself is not counted). */
export const SERVED_PATH = '/bench/served';

/**
 * Counts the HTTP requests a server serves, and answers the count at
 * SERVED_PATH: each of a mode's processes reports the exchanges it served,
 * so "exchanges per transfer" is counted by the processes, not computed
 * from what the protocol should send. Call it first on every request; it
 * returns true when it answered (the count itself).
 */
export function servedCounter(): (req: IncomingMessage, res: ServerResponse) => boolean {
  let served = 0;
  return (req, res) => {
    if (req.method === 'GET' && req.url === SERVED_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ served }));
      return true;
    }
    served += 1;
    return false;
  };
}

/** servedCounter in front of an express app's routes. */
export function countServed(app: Express): void {
  const count = servedCounter();
  app.use((req, res, next) => {
    if (!count(req, res)) next();
  });
}

async function readServed(baseUrl: string): Promise<number> {
  const res = await request(`${baseUrl}${SERVED_PATH}`);
  const body = (await res.body.json()) as { served: number };
  return body.served;
}

// `twopc serve` counts what it serves in its own metrics: every request, by route and status.
const REQUESTS = /^twopc_http_request_seconds_count\{[^}]*\} (\S+)$/gm;

async function readCoordinatorServed(baseUrl: string): Promise<number> {
  const res = await request(`${baseUrl}/metrics`);
  const text = await res.body.text();
  let total = 0;
  for (const m of text.matchAll(REQUESTS)) total += Number(m[1]);
  return total;
}

/** Where one process reports what it served: a bench process (countServed) or `twopc serve` (/metrics). */
export interface ServedSource {
  label: string;
  url: string;
  kind: 'bench' | 'coordinator';
}

/**
 * Requests served per transfer by each of a mode's processes, between a
 * baseline read after setup and a read at close, over the transfers the mode
 * completed in between (warm-ups included: a ratio, not a total).
 */
export class ServedMeter {
  private baseline?: number[];
  private transfers = 0;
  private notesCache: string[] = [];

  constructor(private readonly sources: readonly ServedSource[]) {}

  private read(): Promise<number[]> {
    return Promise.all(this.sources.map((s) => (s.kind === 'bench' ? readServed(s.url) : readCoordinatorServed(s.url))));
  }

  async start(): Promise<void> {
    this.baseline = await this.read();
  }

  count(): void {
    if (this.baseline) this.transfers += 1;
  }

  /** Reads the counts once more and keeps the notes; call before the processes stop. */
  async finish(): Promise<void> {
    if (!this.baseline || this.transfers === 0) return;
    const now = await this.read();
    // The coordinator counts its own /metrics read of the baseline.
    const delta = now.map((n, i) => n - this.baseline![i] - (this.sources[i].kind === 'coordinator' ? 1 : 0));
    const per = delta.map((d) => d / this.transfers);
    const total = per.reduce((a, b) => a + b, 0);
    this.notesCache = [
      `HTTP exchanges per transfer, served (counted by each process over ${this.transfers} transfers): ` +
        `${this.sources.map((s, i) => `${s.label} ${per[i].toFixed(2)}`).join(', ')}; total ${total.toFixed(2)}`,
    ];
  }

  notes(): string[] {
    return this.notesCache;
  }
}
