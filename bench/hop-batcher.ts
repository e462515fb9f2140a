import type { Pool } from 'undici';

/** One call a stand-in coordinator sends a stand-in service: its route and body. */
export interface HopCall {
  path: '/twopc/prepare' | '/twopc/commit';
  body: object;
}

async function postJson(pool: Pool, path: string, body: unknown): Promise<unknown> {
  const res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${path} answered ${res.statusCode}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/**
 * The real coordinator's batching rule (coordinator/participants/http/participant-batcher.ts)
 * with nothing else: per service, a call goes at once when no batch is in
 * flight; calls that arrive meanwhile leave together as one `POST /twopc/batch`
 * when it answers; a lone call goes in the per-call form. No deadlines, no
 * signatures, no fallbacks: a stand-in for pricing exchanges only.
 */
export class HopBatcher {
  private readonly queue: { call: HopCall; resolve(): void; reject(e: unknown): void }[] = [];
  private busy = false;

  constructor(private readonly pool: Pool) {}

  call(call: HopCall): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ call, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.busy || this.queue.length === 0) return;
    const batch = this.queue.splice(0, 64);
    this.busy = true;
    const sent =
      batch.length === 1
        ? postJson(this.pool, batch[0].call.path, batch[0].call.body)
        : postJson(this.pool, '/twopc/batch', { calls: batch.map((q) => ({ op: q.call.path.slice('/twopc/'.length), ...q.call.body })) });
    void sent
      .then(() => batch.forEach((q) => q.resolve()), (e: unknown) => batch.forEach((q) => q.reject(e)))
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }
}
