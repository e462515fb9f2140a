import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { problem, writeAnswer } from './answers';

export interface AdmissionOptions {
  /** Transaction requests served at once; the rest wait their turn, first come first served. */
  maxInProgress: number;
  /** Requests that may wait; past this a request is refused 503 `over-capacity` (with Retry-After). */
  maxQueued: number;
  /** Queued requests started per event-loop turn (one setImmediate): timers run between slices. */
  slice: number;
}

export const ADMISSION_DEFAULTS: Readonly<AdmissionOptions> = Object.freeze({ maxInProgress: 128, maxQueued: 10_000, slice: 4 });

/** One waiting request: `start` runs it; a request whose client went away before its turn is skipped. */
interface Waiting {
  start(): void;
  gone: boolean;
}

/** What `admit` did with a request. */
export type Admitted = 'started' | 'queued' | 'refused';

/**
 * Fair admission of transaction requests. With a thousand clients, one
 * event-loop turn's poll phase would otherwise run hundreds of handlers and
 * their continuations back to back, and every timer (lease renewals,
 * deadlines, the lag monitor) would wait behind them. Here at most
 * `maxInProgress` requests run at once; the others wait in arrival order
 * and are started at most `slice` per turn from setImmediate, so timers run
 * between slices. Order is kept: a request never starts before one that
 * arrived earlier, so a client's requests on one connection start in the
 * order sent. A request is only ever started, skipped (its client went away
 * before it began: nothing of it ran) or refused before it began: the
 * answers themselves are the routes'.
 */
export class AdmissionQueue {
  private inProgress = 0;
  private startedTotal = 0;
  private readonly waiting: Waiting[] = [];
  private head = 0;
  private startedThisTurn = 0;
  private turnScheduled = false;
  /** Called as each request starts (the idle collector lifts its young-generation cap). */
  onStart: (() => void) | undefined;

  constructor(
    private readonly options: AdmissionOptions,
    // Injected so tests can run the turns by hand.
    private readonly defer: (fn: () => void) => void = setImmediate,
  ) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`admission.${name} must be an integer >= 1`);
    }
  }

  get running(): number {
    return this.inProgress;
  }

  /** Requests started since the queue was made (it only grows). */
  get started(): number {
    return this.startedTotal;
  }

  get queued(): number {
    return this.waiting.length - this.head;
  }

  /**
   * Starts `start` now when there is room in this turn's slice and nothing
   * waits before it; queues it otherwise; refuses it when the queue is full.
   * `release` (returned for started and queued requests) must be called once
   * when the request ends, whether it ran or its client went away first.
   */
  admit(start: () => void): { admitted: Admitted; release: () => void } {
    if (this.queued === 0 && this.hasRoom()) {
      this.begin();
      start();
      return { admitted: 'started', release: this.releaser() };
    }
    if (this.queued >= this.options.maxQueued) return { admitted: 'refused', release: () => undefined };
    const entry: Waiting = { start, gone: false };
    this.waiting.push(entry);
    this.schedule();
    let begun = false;
    entry.start = () => {
      begun = true;
      start();
    };
    const release = this.releaser();
    return {
      admitted: 'queued',
      // Gone before its turn: it is skipped, and never held a slot.
      release: () => (begun ? release() : (entry.gone = true)),
    };
  }

  private hasRoom(): boolean {
    return this.inProgress < this.options.maxInProgress && this.startedThisTurn < this.options.slice;
  }

  private begin(): void {
    this.inProgress += 1;
    this.startedThisTurn += 1;
    this.startedTotal += 1;
    this.onStart?.();
    // The slice count is per turn: the next turn starts a fresh slice.
    this.schedule();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inProgress -= 1;
      if (this.queued > 0) this.schedule();
    };
  }

  private schedule(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    this.defer(() => this.turn());
  }

  private turn(): void {
    this.turnScheduled = false;
    this.startedThisTurn = 0;
    while (this.queued > 0 && this.hasRoom()) {
      const next = this.waiting[this.head];
      this.head += 1;
      if (next.gone) continue;
      this.begin();
      next.start();
    }
    this.compact();
    // More waiting and room left: the next slice runs after this turn's timers.
    if (this.queued > 0 && this.inProgress < this.options.maxInProgress) this.schedule();
  }

  private compact(): void {
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** Requests that go through the queue: the transaction API. Health, readiness, metrics, the admin API and the console never wait behind it. */
export function isTransactionRequest(url: string | undefined): boolean {
  return url !== undefined && url.startsWith('/v1/') && !url.startsWith('/v1/admin');
}

/**
 * The server's request listener: transaction requests through `queue`, the
 * rest straight to `app`. A request refused because the queue is full gets
 * 503 `over-capacity` with Retry-After; nothing of it ran.
 */
export function admitted(app: RequestListener, queue: AdmissionQueue): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (!isTransactionRequest(req.url)) return void app(req, res);
    let release: (() => void) | undefined;
    // 'close' comes once the answer is sent or the connection is gone, whichever is first.
    res.once('close', () => release?.());
    const admission = queue.admit(() => app(req, res));
    release = admission.release;
    if (admission.admitted === 'refused') {
      const detail = `${queue.queued} requests wait for the coordinator (http.maxQueuedRequests, TWOPC_MAX_QUEUED_REQUESTS); retry shortly`;
      return writeAnswer(res, problem(503, 'over-capacity', detail, { limit: 'maxQueuedRequests' }, { 'retry-after': '1' }));
    }
  };
}
