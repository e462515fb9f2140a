import { BATCH_BUDGET_QUERY, batchAnswerSchema, MAX_BATCH_CALLS } from '../../../participant-sdk/src';
import type { BatchCall } from '../../../participant-sdk/src';
import type { ParticipantResponse } from './participant-pools';

/** How one signed POST is sent: its deadline, and what goes with it. */
export interface PostOptions {
  timeoutMs: number;
  txId?: string;
  /** The parent, in the trace, of the participant's span for the call (see withTraceQuery). */
  traceparent?: string;
  /** Answers longer than this are treated as invalid (default: maxAnswerBytes). */
  maxAnswerBytes?: number;
}

/** Sends one signed POST to the participant (`suffix` below its URL) and resolves with its answer, or throws the transport error. */
export type SignedPost = (suffix: string, body: object, options: PostOptions) => Promise<ParticipantResponse>;

interface Queued {
  call: BatchCall;
  /** The call's whole deadline, and when it ends (time spent queued counts against it). */
  timeoutMs: number;
  deadline: number;
  expiry: NodeJS.Timeout;
  resolve(answer: ParticipantResponse): void;
  reject(error: unknown): void;
}

export interface BatcherOptions {
  /** Calls per batch, at most (the participant takes up to MAX_BATCH_CALLS). */
  maxCalls: number;
  /** Batches this batcher keeps in flight at once before it queues (1: group commit's rule). */
  inFlight: number;
  /** A batch in flight longer than this stops holding back the next one: one slow call must not stall the calls behind it. */
  slowAfterMs: number;
  /** The answer limit of one call; a batch answer may be this much per call. */
  maxAnswerBytes: number;
  /** Called once the URL answered a batch 404 or 405: it does not serve the batched form (any more). */
  notServed(): void;
}

/**
 * Part of each call's deadline the participant gets to run a batched call
 * (the query's budget): the rest is for the answer to travel. A call not done
 * by then gets its own "outcome unknown" result, so one slow call cannot
 * make the whole batch time out (docs/protocol.md).
 */
const BUDGET_SHARE = 0.75;

/**
 * A batch answer may be the per-call limit times its calls, but no more than
 * this (unless one call's limit is larger): an SDK's result is 1–2 KiB, and a
 * participant trickling 64 × 64 KiB back on each of many connections must not
 * hold gigabytes of the coordinator's memory.
 */
const MAX_BATCH_ANSWER_BYTES = 256 * 1024;

/**
 * Full batches accepted in a row at a cap lowered by a 413 before a batch of
 * twice as many calls is tried: a participant's body limit may be raised, or
 * the 413 may have come from calls larger than usual. Each refused try
 * doubles the run needed before the next (up to MAX_GROW_AFTER_BATCHES), so a
 * participant whose limit really is lower costs a refused batch (and its calls
 * resent alone) ever more rarely. Counted in batches, not time: no timer.
 */
export const GROW_AFTER_BATCHES = 8;
export const MAX_GROW_AFTER_BATCHES = 1024;

/**
 * The coordinator's calls to one participant URL, batched the way group
 * commit shares an fsync: a call is sent at once when no batch is in flight;
 * calls that arrive meanwhile wait and leave together, as one `POST
 * {url}/batch`, as soon as it answers. No timer ever holds a call back to
 * fill a batch. A lone call goes in the per-call form.
 *
 * Each call gets its own result (the status and body its per-call route would
 * have answered). A batch that gets no valid answer (a timeout, a reset, a
 * body cut mid-message or not the protocol's) fails every call in it with
 * that error: for each, "outcome unknown", exactly as for a lost single call.
 * A batch refused before anything ran (404 or 405: no batch route; 413: too
 * large) is sent again as single calls; after a 413, batches hold half as many
 * calls until a run of them is accepted (GROW_AFTER_BATCHES).
 */
export class ParticipantBatcher {
  private readonly queue: Queued[] = [];
  private holding = 0;
  /** Calls per batch now: the configured maximum, less after a 413 (see GROW_AFTER_BATCHES). */
  private maxCalls: number;
  private readonly ceiling: number;
  /** Full batches accepted in a row at `maxCalls`, and how many it takes to try twice as many. */
  private acceptedInARow = 0;
  private growAfter = GROW_AFTER_BATCHES;
  /** `maxCalls` was raised and no full batch at it was accepted yet: a 413 now refuses the raise. */
  private trying = false;
  private served = true;

  constructor(
    private readonly post: SignedPost,
    private readonly options: BatcherOptions,
  ) {
    this.ceiling = Math.min(options.maxCalls, MAX_BATCH_CALLS);
    this.maxCalls = this.ceiling;
  }

  call(call: BatchCall, timeoutMs: number): Promise<ParticipantResponse> {
    return new Promise((resolve, reject) => {
      // A call still queued at its deadline fails then, unsent (outcome unknown, as any call without an answer).
      const expiry = setTimeout(() => {
        const at = this.queue.indexOf(queued);
        if (at === -1) return;
        this.queue.splice(at, 1);
        reject(Object.assign(new Error(`not sent within ${timeoutMs} ms: the batches ahead of it were still in flight`), { name: 'TimeoutError' }));
      }, timeoutMs);
      expiry.unref();
      const queued: Queued = { call, timeoutMs, deadline: Date.now() + timeoutMs, expiry, resolve, reject };
      this.queue.push(queued);
      this.pump();
    });
  }

  private pump(): void {
    while (this.holding < this.options.inFlight && this.queue.length > 0) {
      // Once the URL said it has no batch route, what is left here goes as single calls.
      const batch = this.queue.splice(0, this.served ? this.maxCalls : this.queue.length);
      for (const q of batch) clearTimeout(q.expiry);
      this.holding += 1;
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        clearTimeout(slow);
        this.holding -= 1;
        this.pump();
      };
      const slow = setTimeout(release, this.options.slowAfterMs);
      slow.unref();
      void this.send(batch).finally(release);
    }
  }

  private async send(all: Queued[]): Promise<void> {
    const now = Date.now();
    // The batch's budget is set by its shortest deadline: a call that waited out most of its own
    // goes alone, so it cannot cut the fresh calls' budget to nothing (each would answer unknown).
    const late = all.filter((q) => remaining(q, now) < q.timeoutMs / 2);
    const batch = all.filter((q) => !late.includes(q));
    const singles = batch.length <= 1 || !this.served ? all : late;
    // At a cap of one every call goes alone, so no batch could ever be accepted at it: a lone call answered
    // (anything but a 413) counts towards the run that tries two again.
    const atCapOfOne = this.served && this.maxCalls === 1 && all.length === 1;
    const sent = singles.map((q) => this.single(q, false, atCapOfOne ? () => this.accepted(1) : undefined));
    if (singles !== all) sent.push(this.sendBatch(batch, now));
    await Promise.all(sent);
  }

  private async sendBatch(batch: Queued[], now: number): Promise<void> {
    const timeoutMs = Math.max(...batch.map((q) => remaining(q, now)));
    const budgetMs = Math.max(1, Math.floor(Math.min(...batch.map((q) => remaining(q, now))) * BUDGET_SHARE));
    const maxAnswerBytes = Math.max(this.options.maxAnswerBytes, Math.min(this.options.maxAnswerBytes * batch.length, MAX_BATCH_ANSWER_BYTES));
    let results: ParticipantResponse[];
    try {
      const answer = await this.post(`/batch?${BATCH_BUDGET_QUERY}=${budgetMs}`, { calls: batch.map((q) => q.call) }, { timeoutMs, maxAnswerBytes });
      if (this.refusedUnrun(answer, batch.length)) {
        // Nothing of the batch ran (no such route, or a body over the participant's limit): each call goes alone,
        // marked resent: behind a proxy that retries POSTs the batch may have run after all.
        await Promise.all(batch.map((q) => this.single(q, true)));
        return;
      }
      results = answers(answer, batch);
    } catch (e) {
      for (const q of batch) q.reject(e);
      return;
    }
    this.accepted(batch.length);
    batch.forEach((q, i) => q.resolve(results[i]));
  }

  /** `fitted`: told when the call was answered by anything but a 413 (it fit the participant's limit alone). */
  private single(q: Queued, resent = false, fitted?: () => void): Promise<void> {
    // The per-call form carries the call's traceparent in its signed query, not in its body.
    const { op, traceparent, ...body } = q.call;
    const reject = resent ? (e: unknown) => q.reject(new ResentCallError(e)) : q.reject;
    const answered = fitted
      ? (r: ParticipantResponse) => {
          if (r.status !== 413) fitted();
          q.resolve(r);
        }
      : q.resolve;
    return this.post(`/${op}`, body, { timeoutMs: remaining(q, Date.now()), txId: q.call.txId, ...(traceparent ? { traceparent } : {}) }).then(answered, reject);
  }

  /** 404 / 405: the URL has no batch route (an older or rolled-back SDK); 413: fewer calls per batch, until a run of them is accepted. */
  private refusedUnrun(answer: ParticipantResponse, calls: number): boolean {
    if (answer.status === 404 || answer.status === 405) {
      this.served = false;
      this.options.notServed();
      return true;
    }
    if (answer.status !== 413) return false;
    // A raise refused: the participant's limit is likely below it still, so the next try waits longer.
    if (this.trying) this.growAfter = Math.min(this.growAfter * 2, MAX_GROW_AFTER_BATCHES);
    // min: a late 413 of a batch sent before an earlier one lowered the cap must not raise it.
    this.maxCalls = Math.min(this.maxCalls, Math.max(1, Math.floor(calls / 2)));
    this.trying = false;
    this.acceptedInARow = 0;
    return true;
  }

  /**
   * A batch of `calls` was answered. Only a full one says the cap holds (a
   * smaller one proves nothing of a larger size); after a run of them, below
   * the configured maximum, the cap doubles (up to that maximum).
   */
  private accepted(calls: number): void {
    if (calls < this.maxCalls) return;
    if (this.trying) {
      // The raised cap held: the run needed before the next raise is back to its start.
      this.trying = false;
      this.growAfter = GROW_AFTER_BATCHES;
    }
    if (this.maxCalls >= this.ceiling) return;
    this.acceptedInARow += 1;
    if (this.acceptedInARow < this.growAfter) return;
    this.acceptedInARow = 0;
    this.maxCalls = Math.min(this.ceiling, this.maxCalls * 2);
    this.trying = true;
  }
}

/**
 * The failure of a call sent alone after its batch was refused (404, 405,
 * 413). The refusal says nothing ran, but a proxy that retries POSTs may have
 * delivered the batch elsewhere first: so this failure, even a refused
 * connection, does not prove the call did not run.
 */
export class ResentCallError extends Error {
  constructor(cause: unknown) {
    super(`sent alone after its batch was refused: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'ResentCallError';
  }
}

/** Whether a failure (or one of its causes) is a ResentCallError. */
export function wasResent(e: unknown): boolean {
  for (let x = e, depth = 0; x && typeof x === 'object' && depth < 5; x = (x as { cause?: unknown }).cause, depth += 1) {
    if (x instanceof ResentCallError) return true;
  }
  return false;
}

/** What is left of the call's deadline (at least 1 ms: an expired call is failed by its expiry, not here). */
function remaining(q: Queued, now: number): number {
  return Math.max(1, q.deadline - now);
}

/**
 * One answer per call, or throws: a batch answer that is not exactly that
 * tells nothing of any call. A result that names its call (op and gid, as
 * this SDK's do) must name the one at its position.
 */
function answers(answer: ParticipantResponse, batch: Queued[]): ParticipantResponse[] {
  const count = batch.length;
  if (answer.status !== 200 || answer.text === undefined) throw new Error(`batch answered HTTP ${answer.status}${answer.text === undefined ? ' over the size limit' : ''}`);
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    throw new Error(`batch answer is not JSON (${Buffer.byteLength(answer.text)} bytes)`);
  }
  const parsed = batchAnswerSchema.safeParse(json);
  if (!parsed.success || parsed.data.results.length !== count) throw new Error(`batch answer is not one result per call (${count} calls)`);
  const { results } = parsed.data;
  if (results.some((r, i) => (r.op !== undefined && r.op !== batch[i].call.op) || (r.gid !== undefined && r.gid !== batch[i].call.gid))) {
    throw new Error(`batch answer's results are not in the calls' order (${count} calls)`);
  }
  return results.map((r) => ({ status: r.status, text: '', json: r.body }));
}
