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
  timeoutMs: number;
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
 * large) is sent again as single calls.
 */
export class ParticipantBatcher {
  private readonly queue: Queued[] = [];
  private holding = 0;
  private maxCalls: number;
  private served = true;

  constructor(
    private readonly post: SignedPost,
    private readonly options: BatcherOptions,
  ) {
    this.maxCalls = Math.min(options.maxCalls, MAX_BATCH_CALLS);
  }

  call(call: BatchCall, timeoutMs: number): Promise<ParticipantResponse> {
    return new Promise((resolve, reject) => {
      this.queue.push({ call, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.holding < this.options.inFlight && this.queue.length > 0) {
      // Once the URL said it has no batch route, what is left here goes as single calls.
      const batch = this.queue.splice(0, this.served ? this.maxCalls : this.queue.length);
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

  private async send(batch: Queued[]): Promise<void> {
    if (batch.length === 1 || !this.served) {
      await Promise.all(batch.map((q) => this.single(q)));
      return;
    }
    const timeoutMs = Math.max(...batch.map((q) => q.timeoutMs));
    const budgetMs = Math.floor(Math.min(...batch.map((q) => q.timeoutMs)) * BUDGET_SHARE);
    let results: ParticipantResponse[];
    try {
      const answer = await this.post(`/batch?${BATCH_BUDGET_QUERY}=${budgetMs}`, { calls: batch.map((q) => q.call) }, { timeoutMs, maxAnswerBytes: this.options.maxAnswerBytes * batch.length });
      if (this.refusedUnrun(answer, batch.length)) {
        // Nothing of the batch ran (no such route, or a body over the participant's limit): each call goes alone.
        await Promise.all(batch.map((q) => this.single(q)));
        return;
      }
      results = answers(answer, batch);
    } catch (e) {
      for (const q of batch) q.reject(e);
      return;
    }
    batch.forEach((q, i) => q.resolve(results[i]));
  }

  private single(q: Queued): Promise<void> {
    // The per-call form carries the call's traceparent in its signed query, not in its body.
    const { op, traceparent, ...body } = q.call;
    return this.post(`/${op}`, body, { timeoutMs: q.timeoutMs, txId: q.call.txId, ...(traceparent ? { traceparent } : {}) }).then(q.resolve, q.reject);
  }

  /** 404 / 405: the URL has no batch route (an older or rolled-back SDK); 413: fewer calls per batch from now on. */
  private refusedUnrun(answer: ParticipantResponse, calls: number): boolean {
    if (answer.status === 404 || answer.status === 405) {
      this.served = false;
      this.options.notServed();
      return true;
    }
    if (answer.status !== 413) return false;
    this.maxCalls = Math.max(1, Math.floor(calls / 2));
    return true;
  }
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
