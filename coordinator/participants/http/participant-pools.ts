import { EventEmitter } from 'node:events';
import { Pool } from 'undici';
import type { HttpParticipantOptions } from './http-participant-options';
import { OriginHealth } from './origin-health';

/** One HTTP call to a participant service. */
export interface ParticipantRequest {
  origin: string;
  /** Path (and query) exactly as the participant will see it, and as it was signed. */
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Answers longer than this are treated as invalid (default: the options' maxAnswerBytes; a batch's scales with its calls). */
  maxAnswerBytes?: number;
}

/** A participant's answer; `text` is undefined when the body was longer than `maxAnswerBytes`. */
export interface ParticipantResponse {
  status: number;
  text: string | undefined;
  /** The body already parsed (one result of a batch answer); `text` is then ''. */
  json?: unknown;
}

/** Pools kept at once; beyond it the least recently used is closed (its calls in flight finish first). */
const MAX_ORIGINS = 256;

/**
 * The coordinator's connections to participant services: one undici `Pool`
 * per origin (kept alive, bounded), shared by every branch at that origin.
 * Redirects are never followed: a participant answers at the URL it enlisted.
 * The number of pools is bounded too, so clients enlisting many origins
 * cannot make the coordinator hold connections to all of them.
 */
export class ParticipantPools {
  private readonly pools = new Map<string, { pool: Pool; health: OriginHealth }>();
  private closed = false;

  constructor(
    private readonly options: Pick<HttpParticipantOptions, 'connectTimeoutMs' | 'connectionsPerOrigin' | 'keepAliveTimeoutMs' | 'maxAnswerBytes' | 'unresponsiveAfterFailures' | 'unresponsiveProbes'>,
  ) {}

  private pool(origin: string): { pool: Pool; health: OriginHealth } {
    let entry = this.pools.get(origin);
    if (entry) {
      // Map order is recency order: move it to the end.
      this.pools.delete(origin);
    } else {
      const pool = new Pool(origin, {
        connections: this.options.connectionsPerOrigin,
        keepAliveTimeout: this.options.keepAliveTimeoutMs,
        connect: { timeout: this.options.connectTimeoutMs },
      });
      entry = { pool, health: new OriginHealth(this.options.unresponsiveAfterFailures, this.options.unresponsiveProbes) };
      const oldest = this.pools.size >= MAX_ORIGINS ? this.pools.keys().next().value : undefined;
      if (oldest !== undefined) {
        void this.pools.get(oldest)?.pool.close().catch(() => undefined);
        this.pools.delete(oldest);
      }
    }
    this.pools.set(origin, entry);
    return entry;
  }

  /**
   * Sends one request; throws undici's (or the timeout's) error when no
   * complete answer came, or OriginUnresponsiveError, unsent, when the origin
   * is not answering and its probes are out (origin-health.ts).
   */
  async send(request: ParticipantRequest): Promise<ParticipantResponse> {
    if (this.closed) throw new Error('participant connections are closed');
    const { pool, health } = this.pool(request.origin);
    const started = health.begin();
    let answered = false;
    try {
      const answer = await this.request(pool, request);
      answered = true;
      return answer;
    } finally {
      health.done(answered, started);
    }
  }

  private async request(pool: Pool, request: ParticipantRequest): Promise<ParticipantResponse> {
    // Covers the call from when undici dispatches it on a connection, a slowly trickling body included.
    // undici acts on a signal only from then: a call still waiting for a connect ends by
    // connectTimeoutMs, one queued behind busy connections when one frees (256 per origin make that
    // rare). Either way a late end is outcome-unknown, as a timeout is.
    const deadline = new CallDeadline(request.timeoutMs);
    try {
      const response = await pool.request({
        path: request.path,
        method: request.method,
        headers: request.headers,
        body: request.body ?? null,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
        signal: deadline,
      });
      return { status: response.statusCode, text: await readCapped(response.body, request.maxAnswerBytes ?? this.options.maxAnswerBytes) };
    } finally {
      deadline.clear();
    }
  }

  /**
   * Closes every connection. Calls in flight get `graceMs` to finish (the
   * engine has stopped phase 2 by then; only a PREPARE whose vote nobody
   * waits for any more can still be running), then connections are cut.
   */
  async close(graceMs = 1_000): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()].map((e) => e.pool);
    this.pools.clear();
    await Promise.allSettled(
      pools.map((pool) => {
        let timer: NodeJS.Timeout | undefined;
        const cut = new Promise<void>((resolve) => {
          timer = setTimeout(() => void pool.destroy().catch(() => undefined).then(resolve), graceMs);
        });
        return Promise.race([pool.close(), cut]).finally(() => clearTimeout(timer));
      }),
    );
  }
}

/** The body as text, or undefined (and the rest discarded) once it exceeds `max` bytes. */
async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A call's whole deadline, as undici takes a signal (an emitter with
 * `aborted` and `reason`), aborting with what `AbortSignal.timeout` would:
 * a `TimeoutError` DOMException. Not `AbortSignal.timeout` itself: it costs
 * about 45 µs a call on Node 20 (an EventTarget, its listener, a tracked
 * timer), and its timer runs to the end of the deadline after the call
 * answered, so a busy coordinator held thousands of them (BENCHMARKS.md,
 * "Services path: Node CPU per request, fifth session"). This one's timer
 * is cleared when the call ends.
 */
class CallDeadline extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(ms: number) {
    super();
    this.timer = setTimeout(() => {
      this.aborted = true;
      this.reason = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
      this.emit('abort');
    }, ms);
    // As AbortSignal.timeout's: the deadline alone keeps no process alive.
    this.timer.unref();
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}
