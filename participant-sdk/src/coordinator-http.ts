import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { ErrorCode, TwopcError, errorMessage } from './errors';
import { Answer, Attempt, CallKind, nextStep, parseRetryAfter } from './failover';
import { PROBLEM_CONTENT_TYPE } from './problem';
import { IDEMPOTENCY_HEADER } from './wire';
import { inSpan, SDK_TRACE_SCOPE, TRACE_ATTRIBUTES, withTraceparent } from './tracing';

export type { Answer } from './failover';

export interface CoordinatorHttpOptions {
  /** Base URLs without a trailing slash, in order of preference. */
  urls: readonly string[];
  token?: string;
  /** The whole call: every attempt and every pause. */
  timeoutMs: number;
  /** One attempt, at most (and at most what is left of timeoutMs). */
  attemptTimeoutMs: number;
  retries: number;
  connections: number;
}

interface Target {
  url: string;
  pool: Pool;
  basePath: string;
}

type CallOptions = { idempotencyKey?: string; transportCode?: ErrorCode };

/**
 * Calls to the coordinator instances over one keep-alive pool each, with the
 * failover rules of failover.ts. Sticky: every call starts at the instance
 * that last answered, so calls for a transaction usually reach the instance
 * that began it (and owns it) without a relay hop, and its connections stay warm.
 */
export class CoordinatorHttp {
  // One pool per origin: a call then needs no URL parsed nor a pool looked up (as undici's
  // `request(url)` through an Agent does on every call).
  private readonly targets: Target[];
  private preferred = 0;

  constructor(private readonly options: CoordinatorHttpOptions) {
    this.targets = options.urls.map((u) => {
      const url = new URL(u);
      const pool = new Pool(url.origin, {
        connections: options.connections,
        keepAliveTimeout: 30_000,
        headersTimeout: options.attemptTimeoutMs,
        bodyTimeout: options.attemptTimeoutMs,
      });
      return { url: u, pool, basePath: url.pathname.replace(/\/+$/, '') };
    });
  }

  /**
   * One call: each URL is tried at most once, starting at the preferred one,
   * then `retries` repeats with a growing pause (at least the last answer's
   * Retry-After), all within `timeoutMs`. `kind` says where a call may be
   * repeated (failover.ts); `transportCode` is the error when no answer came
   * and the request may have arrived.
   */
  call(method: 'GET' | 'POST', path: string, kind: CallKind, body?: unknown, options: CallOptions = {}): Promise<Answer> {
    // A client span per call (twopc.client.begin, .enlist, .commit, .abort, .get); its traceparent goes along.
    const [, txId, step] = /^\/v1\/transactions(?:\/([^/]+))?(?:\/(\w+))?/.exec(path) ?? [];
    const op = method === 'GET' ? 'get' : step === 'branches' ? 'enlist' : (step ?? 'begin');
    return inSpan(`twopc.client.${op}`, { [TRACE_ATTRIBUTES.txId]: txId }, () => this.send(method, path, kind, body, options), { kind: 'client', scope: SDK_TRACE_SCOPE });
  }

  private async send(method: 'GET' | 'POST', path: string, kind: CallKind, body: unknown, options: CallOptions): Promise<Answer> {
    const deadline = Date.now() + this.options.timeoutMs;
    const headers: Record<string, string> = withTraceparent({ accept: `application/json, ${PROBLEM_CONTENT_TYPE}` });
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (options.idempotencyKey) headers[IDEMPOTENCY_HEADER] = options.idempotencyKey;
    const text = body === undefined ? undefined : JSON.stringify(body);
    if (text !== undefined) headers['content-type'] = 'application/json';

    const tried = new Set<number>();
    let index = this.preferred;
    let pinned = false;
    let repeats = 0;
    // Whether some attempt may have reached a coordinator: only then is a lost answer "outcome unknown".
    let maybeSent = false;
    let last: Attempt;
    for (;;) {
      last = await this.attempt(this.targets[index], method, path, headers, text, deadline);
      tried.add(index);
      if (last.kind === 'lost') maybeSent = true;
      const step = nextStep(kind, last);
      if (step === 'done') {
        this.preferred = index;
        break;
      }
      // A keyed call that may have reached this instance stays here for good (failover.ts).
      if (step === 'same-url') pinned = true;
      if (!pinned) index = (index + 1) % this.targets.length;
      if (tried.has(index)) {
        if (repeats >= this.options.retries) break;
        const retryAfter = last.kind === 'answer' ? (last.answer.retryAfterMs ?? 0) : 0;
        const pause = Math.max(100 * 4 ** repeats, retryAfter);
        // No point pausing past the deadline: the caller gets the last outcome now.
        if (Date.now() + pause >= deadline) break;
        repeats += 1;
        await sleep(pause);
      }
      if (Date.now() >= deadline) break;
    }
    if (last.kind === 'answer') return last.answer;
    throw new TwopcError(
      maybeSent ? (options.transportCode ?? 'coordinator-unavailable') : 'coordinator-unavailable',
      `coordinator ${method} ${path}: no answer${this.targets.length > 1 ? ` from ${[...tried].map((i) => this.targets[i].url).join(', ')}` : ''}: ${errorMessage(last.error)}`,
      { method, path },
      { cause: last.error },
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.pool.close()));
  }

  private async attempt(target: Target, method: 'GET' | 'POST', path: string, headers: Record<string, string>, body: string | undefined, deadline: number): Promise<Attempt> {
    // undici's own timers, not an AbortSignal per call: those would linger for the whole timeout.
    const budget = Math.max(1, Math.min(this.options.attemptTimeoutMs, deadline - Date.now()));
    try {
      const res = await target.pool.request({ path: `${target.basePath}${path}`, method, headers, body, headersTimeout: budget, bodyTimeout: budget });
      const raw = await res.body.text();
      const type = String(res.headers['content-type'] ?? '');
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      return {
        kind: 'answer',
        answer: { status: res.statusCode, problem: type.startsWith(PROBLEM_CONTENT_TYPE), body: parseJson(raw), ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
      };
    } catch (e) {
      return { kind: notSent(e) ? 'not-sent' : 'lost', error: e };
    }
  }
}

// Errors that prove the request never left: no connection was made.
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

/** The request never left: every error code found (through causes and happy-eyeballs' per-address errors) says no connection was made. */
function notSent(error: unknown): boolean {
  const codes: string[] = [];
  const visit = (e: unknown, depth: number): void => {
    if (typeof e !== 'object' || e === null || depth > 3) return;
    const { code, errors, cause } = e as { code?: unknown; errors?: unknown; cause?: unknown };
    if (typeof code === 'string') codes.push(code);
    if (Array.isArray(errors)) for (const inner of errors) visit(inner, depth + 1);
    visit(cause, depth + 1);
  };
  visit(error, 0);
  return codes.length > 0 && codes.every((c) => NOT_CONNECTED.has(c));
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}
