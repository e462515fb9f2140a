import { batchAnswerSchema, MAX_BATCH_CALLS } from '../../../participant-sdk/src';
import type { BatchCall } from '../../../participant-sdk/src';
import type { ParticipantResponse } from './participant-pools';

/** Sends one signed POST to the participant (`suffix` below its URL) and resolves with its answer, or throws the transport error. */
/** `traceparent`: the parent, in the trace, of the participant's span for the call (see withTraceQuery). */
export type SignedPost = (suffix: string, body: object, timeoutMs: number, txId?: string, traceparent?: string) => Promise<ParticipantResponse>;

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
}

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
 */
export class ParticipantBatcher {
  private readonly queue: Queued[] = [];
  private holding = 0;

  constructor(
    private readonly post: SignedPost,
    private readonly options: BatcherOptions,
  ) {}

  call(call: BatchCall, timeoutMs: number): Promise<ParticipantResponse> {
    return new Promise((resolve, reject) => {
      this.queue.push({ call, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.holding < this.options.inFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, Math.min(this.options.maxCalls, MAX_BATCH_CALLS));
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
    if (batch.length === 1) {
      const [only] = batch;
      // The per-call form carries the call's traceparent in its signed query, not in its body.
      const { op, traceparent, ...body } = only.call;
      await this.post(`/${op}`, body, only.timeoutMs, only.call.txId, traceparent).then(only.resolve, only.reject);
      return;
    }
    const timeoutMs = Math.max(...batch.map((q) => q.timeoutMs));
    let results: ParticipantResponse[];
    try {
      results = answers(await this.post('/batch', { calls: batch.map((q) => q.call) }, timeoutMs), batch.length);
    } catch (e) {
      for (const q of batch) q.reject(e);
      return;
    }
    batch.forEach((q, i) => q.resolve(results[i]));
  }
}

/** One answer per call, or throws: a batch answer that is not exactly that tells nothing of any call. */
function answers(answer: ParticipantResponse, count: number): ParticipantResponse[] {
  if (answer.status !== 200 || answer.text === undefined) throw new Error(`batch answered HTTP ${answer.status}${answer.text === undefined ? ' over the size limit' : ''}`);
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    throw new Error(`batch answer is not JSON (${Buffer.byteLength(answer.text)} bytes)`);
  }
  const parsed = batchAnswerSchema.safeParse(json);
  if (!parsed.success || parsed.data.results.length !== count) throw new Error(`batch answer is not one result per call (${count} calls)`);
  return parsed.data.results.map((r) => ({ status: r.status, text: '', json: r.body }));
}
