import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { ErrorCode, TwopcError, errorMessage } from './errors';
import { PROBLEM_CONTENT_TYPE } from './problem';
import { IDEMPOTENCY_HEADER } from './wire';

/** An answer of the coordinator: its status, whether it is a problem document, and its body (parsed JSON, or the text). */
export interface Answer {
  status: number;
  problem: boolean;
  body: unknown;
}

export interface CoordinatorHttpOptions {
  /** Base URL without a trailing slash. */
  url: string;
  token?: string;
  timeoutMs: number;
  retries: number;
  connections: number;
}

const RETRYABLE_STATUS = new Set([502, 503, 504]);

/** Calls to the coordinator over one keep-alive pool, with the retry rules of CoordinatorClient. */
export class CoordinatorHttp {
  // One origin, so one pool: a call then needs no URL parsed nor a pool looked up (as undici's
  // `request(url)` through an Agent does on every call).
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(private readonly options: CoordinatorHttpOptions) {
    const url = new URL(options.url);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, { connections: options.connections, keepAliveTimeout: 30_000, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
  }

  /**
   * One call, retried `retries` times after no answer or a 502/503/504
   * (with `retryAnswers: false`, after no answer only). The caller decides
   * which calls that is safe for; `transportCode` is the error when no answer
   * came and the request may have arrived.
   */
  async call(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    options: { idempotencyKey?: string; transportCode?: ErrorCode; retryAnswers?: boolean } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { accept: `application/json, ${PROBLEM_CONTENT_TYPE}` };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (options.idempotencyKey) headers[IDEMPOTENCY_HEADER] = options.idempotencyKey;
    const text = body === undefined ? undefined : JSON.stringify(body);
    if (text !== undefined) headers['content-type'] = 'application/json';
    // Whether some attempt may have reached the coordinator: only then is a lost answer "outcome unknown".
    let maybeSent = false;
    for (let attempt = 0; ; attempt++) {
      let answer: Answer | undefined;
      let transportError: unknown;
      try {
        const res = await this.pool.request({ path: `${this.basePath}${path}`, method, headers, body: text });
        const raw = await res.body.text();
        const type = String(res.headers['content-type'] ?? '');
        answer = { status: res.statusCode, problem: type.startsWith(PROBLEM_CONTENT_TYPE), body: parseJson(raw) };
      } catch (e) {
        transportError = e;
        if (!notSent(e)) maybeSent = true;
      }
      const retryable = answer === undefined || (options.retryAnswers !== false && RETRYABLE_STATUS.has(answer.status));
      if (!retryable || attempt >= this.options.retries) {
        if (answer) return answer;
        throw new TwopcError(
          maybeSent ? (options.transportCode ?? 'coordinator-unavailable') : 'coordinator-unavailable',
          `coordinator ${method} ${path}: no answer: ${errorMessage(transportError)}`,
          { method, path },
          { cause: transportError },
        );
      }
      await sleep(100 * 4 ** attempt);
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
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
