import type { Pool } from 'undici';
import type { TickRecorder } from './tick-recorder';
import type { StepAction, WorkerConfig } from './worker-protocol';

interface Answer {
  status: number;
  text: string;
}

/** A request that got no HTTP answer: its error code (undici's or the OS's) names the kind. */
export class TransportError extends Error {
  constructor(readonly kind: string, message: string) {
    super(message);
  }
}

function kindOf(e: unknown): string {
  const err = e as { code?: unknown; cause?: { code?: unknown }; name?: unknown };
  const code = err?.cause?.code ?? err?.code ?? err?.name;
  return typeof code === 'string' ? code : 'unknown-error';
}

/**
 * One API client's transaction cycles against the coordinator's public `/v1`
 * API, timed per request (`<op> <status>`) and per cycle (`tx <outcome>`).
 */
export class ClientCycle {
  private readonly headers: Record<string, string>;
  /** The client's first request (it opens the connection) is also recorded as `first <op> <status>`. */
  private first = true;

  constructor(
    private readonly pool: Pool,
    private readonly config: WorkerConfig,
    private readonly recorder: TickRecorder,
    /** Transactions opened by `open` steps, waiting for `abort-held`. */
    private readonly held: string[],
  ) {
    this.headers = { authorization: `Bearer ${config.token}`, 'content-type': 'application/json', accept: 'application/json' };
  }

  /** Runs one cycle; resolves false when it failed on the transport (the caller then pauses briefly). */
  async run(action: StepAction, phase: string): Promise<boolean> {
    const started = performance.now();
    try {
      const outcome = action === 'abort-held' ? await this.abortHeld(phase) : await this.cycle(action, phase);
      if (outcome === undefined) return true;
      this.recorder.latency(phase, `tx ${outcome}`, (performance.now() - started) * 1000);
      return true;
    } catch (e) {
      this.recorder.latency(phase, 'tx failed', (performance.now() - started) * 1000);
      if (e instanceof TransportError) return false;
      this.recorder.error(phase, `client: ${e instanceof Error ? e.message : String(e)}`.slice(0, 120));
      return true;
    }
  }

  private async cycle(action: Exclude<StepAction, 'abort-held'>, phase: string): Promise<string> {
    const begin = await this.call(phase, 'begin', 'POST', '/v1/transactions', this.config.txTimeoutMs === undefined ? {} : { timeoutMs: this.config.txTimeoutMs });
    if (begin.status !== 201) return `begin-${begin.status}`;
    const id = (JSON.parse(begin.text) as { id: string }).id;
    try {
      for (const p of this.config.participants) {
        const enlist = await this.call(phase, 'enlist', 'POST', `/v1/transactions/${id}/branches`, { participant: p.name, url: p.url, prepare: this.config.prepare });
        if (enlist.status !== 201) {
          await this.abort(phase, id);
          return `enlist-${enlist.status}`;
        }
      }
    } catch (e) {
      await this.abort(phase, id).catch(() => undefined);
      throw e;
    }
    if (action === 'open') {
      this.held.push(id);
      return 'opened';
    }
    if (action === 'abort') {
      const abort = await this.abort(phase, id);
      return abort.status === 200 ? 'aborted-by-client' : `abort-${abort.status}`;
    }
    const commit = await this.call(phase, 'commit', 'POST', `/v1/transactions/${id}/commit`, {});
    if (commit.status === 200) return 'committed';
    if (commit.status === 202) return 'committed-phase2-pending';
    if (commit.status === 409) return 'aborted';
    return `commit-${commit.status}`;
  }

  private async abortHeld(phase: string): Promise<string | undefined> {
    const id = this.held.pop();
    if (id === undefined) return undefined;
    const abort = await this.abort(phase, id);
    return abort.status === 200 ? 'aborted-by-client' : `abort-${abort.status}`;
  }

  private abort(phase: string, id: string): Promise<Answer> {
    return this.call(phase, 'abort', 'POST', `/v1/transactions/${id}/abort`, {});
  }

  private async call(phase: string, op: string, method: 'POST' | 'GET', path: string, body?: object): Promise<Answer> {
    const started = performance.now();
    const first = this.first;
    this.first = false;
    let answer: Answer;
    try {
      const res = await this.pool.request({
        path,
        method,
        headers: this.headers,
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: this.config.requestTimeoutMs,
        bodyTimeout: this.config.requestTimeoutMs,
      });
      answer = { status: res.statusCode, text: await res.body.text() };
    } catch (e) {
      const kind = kindOf(e);
      this.recorder.latency(phase, `${op} ${kind}`, (performance.now() - started) * 1000);
      if (first) this.recorder.latency(phase, `first ${op} ${kind}`, (performance.now() - started) * 1000);
      this.recorder.error(phase, kind);
      throw new TransportError(kind, e instanceof Error ? e.message : String(e));
    }
    this.recorder.latency(phase, `${op} ${answer.status}`, (performance.now() - started) * 1000);
    if (first) this.recorder.latency(phase, `first ${op} ${answer.status}`, (performance.now() - started) * 1000);
    if (answer.status >= 400 && this.config.leakNeedles.some((n) => answer.text.includes(n))) this.recorder.leak(phase, `${op} ${answer.status}: ${answer.text}`);
    return answer;
  }
}
