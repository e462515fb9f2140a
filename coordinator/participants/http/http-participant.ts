import type { z } from 'zod';
import { currentTraceparent, signRequest, withTraceQuery } from '../../../participant-sdk/src';
import {
  branchStatusAnswerSchema,
  commitAnswerSchema,
  prepareAnswerSchema,
  problemSchema,
  rollbackAnswerSchema,
  SIGNATURE_HEADER,
  TRANSACTION_HEADER,
} from '../../../participant-sdk/src';
import type { Vote } from '../../engine/ports/types';
import { errorMessage, TransactionAbortedError, TwopcError } from '../../engine/ports/protocol';
import type { BranchRef, Participant, ParticipantBranchState } from '../../engine/ports/participant';
import type { HttpParticipantOptions } from './http-participant-options';
import { wasResent, type ParticipantBatcher, type PostOptions } from './participant-batcher';
import type { ParticipantPools, ParticipantResponse } from './participant-pools';

/**
 * Failures of setting up a connection, which prove no byte of the request was
 * sent: undici writes a request only on a connected socket. The same codes
 * raised by an established connection (EHOSTUNREACH on a read, after the
 * request went out) prove nothing, so each must come from `connect` itself
 * (or the name lookup before it).
 */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const LOOKUP_FAILURES = new Set(['ENOTFOUND', 'EAI_AGAIN']);
/** undici's connect timeout: raised by its connector before the socket is handed to the request. */
const CONNECT_TIMEOUT = 'UND_ERR_CONNECT_TIMEOUT';

/**
 * A participant service reached over HTTP (SPEC §6 wire protocol): the engine's
 * `Participant` for branches enlisted with a `url`. Every call is signed;
 * every answer is validated. Anything but a well-formed protocol answer
 * (timeout, 5xx, reset, a body that does not validate) is `outcome-unknown`:
 * before the decision the engine counts it as a "no", after it retries.
 *
 * @example
 * const pools = new ParticipantPools(options);
 * const payments = new HttpParticipant('payments', 'http://10.0.0.7:4001/twopc', pools, options);
 */
export class HttpParticipant implements Participant {
  private readonly origin: string;
  private readonly basePath: string;

  constructor(
    readonly name: string,
    readonly url: string,
    private readonly pools: ParticipantPools,
    private readonly options: HttpParticipantOptions,
    /** This URL's batcher, once the participant said it accepts batches (looked up per call: it may say so after this adapter was made). */
    private readonly batcher: (url: string) => ParticipantBatcher | undefined = () => undefined,
  ) {
    // The URL was checked at enlistment; one that no longer parses (an old log) fails each call instead of recovery.
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    this.origin = parsed?.origin ?? '';
    this.basePath = parsed ? parsed.pathname.replace(/\/+$/, '') : '';
  }

  async prepare(branch: BranchRef): Promise<Vote> {
    const answer = await this.call('POST', '/prepare', callBody(branch), this.options.prepareTimeoutMs, branch.txId);
    const vote = answer.status === 200 || answer.status === 409 ? validated(prepareAnswerSchema, answer) : undefined;
    if (vote && (answer.status === 409) === (vote.vote === 'no')) {
      if (vote.vote !== 'no') return { vote: vote.vote };
      return { vote: 'no', reason: vote.reason.slice(0, 1000), ...(vote.sqlState ? { sqlState: vote.sqlState.slice(0, 16) } : {}) };
    }
    throw this.unknown('prepare', answer);
  }

  async commit(branch: BranchRef, options: { onePhase?: boolean; retry?: boolean } = {}): Promise<void> {
    const body = options.onePhase ? { ...callBody(branch), onePhase: true } : callBody(branch);
    let answer: ParticipantResponse;
    try {
      answer = await this.call('POST', '/commit', body, this.options.phaseTwoTimeoutMs, branch.txId);
    } catch (e) {
      // A one-phase commit that never reached the participant did not commit: the
      // engine may decide abort (its rollback is retried until acknowledged). Not so
      // on a retry: the earlier attempt may have committed before its answer was lost.
      if (options.onePhase && !options.retry && !wasResent(e) && notConnected(e)) throw this.aborted(branch, `participant unreachable: ${causeMessage(e)}`, e);
      throw e;
    }
    const state = answer.status === 200 || answer.status === 409 ? validated(commitAnswerSchema, answer) : undefined;
    if (answer.status === 200 && state?.state === 'committed') return;
    if (answer.status === 409 && state?.state === 'rolled-back') {
      if (options.onePhase) throw this.aborted(branch, state.reason.slice(0, 1000));
      // Only a one-phase commit may be refused; a prepared branch that says it rolled back contradicts the decision.
      throw new TwopcError('heuristic-hazard', `${this.where('commit')}: participant reports branch ${branch.gid} rolled back after a commit decision: ${state.reason.slice(0, 1000)}`, { participant: this.name, gid: branch.gid });
    }
    throw this.hazardReported('commit', branch, answer) ?? this.unknown('commit', answer);
  }

  async rollback(branch: BranchRef): Promise<void> {
    const answer = await this.call('POST', '/rollback', callBody(branch), this.options.phaseTwoTimeoutMs, branch.txId);
    if (answer.status === 200 && validated(rollbackAnswerSchema, answer)) return;
    throw this.hazardReported('rollback', branch, answer) ?? this.unknown('rollback', answer);
  }

  async status(branch: BranchRef): Promise<ParticipantBranchState> {
    return this.branchState(branch, '');
  }

  /**
   * The state without side effects (`?observe=1`): the service ends nothing to
   * answer. A service of an SDK version before that ignores the query and
   * answers as `status` does.
   */
  async recordedState(branch: BranchRef): Promise<ParticipantBranchState> {
    return this.branchState(branch, '?observe=1');
  }

  private async branchState(branch: BranchRef, query: string): Promise<ParticipantBranchState> {
    const answer = await this.call('GET', `/branches/${encodeURIComponent(branch.gid)}${query}`, undefined, this.options.statusTimeoutMs, branch.txId);
    const status = answer.status === 200 ? validated(branchStatusAnswerSchema, answer) : undefined;
    if (status) return status.state;
    throw this.unknown('status', answer);
  }

  /** Connections are shared per origin and closed by the owner of the pools. */
  async close(): Promise<void> {}

  /**
   * One signed call (batched with others to the same URL when the participant
   * accepts batches); transport failures become `outcome-unknown` (keeping the cause).
   */
  private async call(method: 'GET' | 'POST', suffix: string, body: object | undefined, timeoutMs: number, txId: string): Promise<ParticipantResponse> {
    if (!this.origin) throw new TwopcError('outcome-unknown', `${this.where(suffix)}: the enlisted URL is not valid`, { participant: this.name });
    const batcher = method === 'POST' && body !== undefined ? this.batcher(this.url) : undefined;
    try {
      // A batched call carries its span's traceparent in the (signed) body; a single call, in its query (send).
      const traceparent = currentTraceparent();
      if (batcher) return await batcher.call({ op: suffix.slice(1) as 'prepare' | 'commit' | 'rollback', ...(body as { txId: string; branchId: number; gid: string }), ...(traceparent ? { traceparent } : {}) }, timeoutMs);
      return await this.send(method, suffix, body, { timeoutMs, txId });
    } catch (e) {
      const why = isTimeout(e) ? `no answer within ${timeoutMs} ms` : causeMessage(e);
      // Named as its per-call route, and said to have gone in a batch (where the batch's error, not the call's, is the cause).
      throw new TwopcError('outcome-unknown', `${this.where(`${method} ${suffix}${batcher ? ' (batched)' : ''}`)}: ${why}`, { participant: this.name }, { cause: e });
    }
  }

  /** Sends one signed request as is; throws the transport error. */
  readonly send = (method: 'GET' | 'POST', suffix: string, body: object | undefined, { timeoutMs, txId, traceparent, maxAnswerBytes }: PostOptions): Promise<ParticipantResponse> => {
    // The trace context rides in the signed query (and the standard header): see withTraceQuery.
    const { path, headers: trace } = withTraceQuery(`${this.basePath}${suffix}`, traceparent);
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = {
      ...trace,
      [SIGNATURE_HEADER]: signRequest(this.options.secret, method, path, text),
      accept: 'application/json',
      'user-agent': 'twopc-coordinator',
    };
    if (txId) headers[TRANSACTION_HEADER] = txId;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return this.pools.send({ origin: this.origin, path, method, headers, body: body === undefined ? undefined : text, timeoutMs, ...(maxAnswerBytes ? { maxAnswerBytes } : {}) });
  };

  /**
   * A participant that finds its branch ended the other way than the decision
   * says answers a 409 problem with code `heuristic-hazard` (the SDK does):
   * retrying cannot help, so phase 2 records it for an operator.
   */
  private hazardReported(op: string, branch: BranchRef, answer: ParticipantResponse): TwopcError | undefined {
    if (answer.status !== 409) return undefined;
    const problem = validated(problemSchema, answer);
    if (problem?.code !== 'heuristic-hazard') return undefined;
    return new TwopcError('heuristic-hazard', `${this.where(op)}: participant reports a heuristic hazard on ${branch.gid}: ${(problem.detail ?? problem.title).slice(0, 500)}`, { participant: this.name, gid: branch.gid });
  }

  /**
   * The body is left out on purpose: this message reaches API clients (as an
   * abort reason), and echoing what an arbitrary URL answered would let them
   * read internal services through the coordinator (SSRF).
   */
  private unknown(op: string, answer: ParticipantResponse): TwopcError {
    const what = answer.text === undefined ? 'an answer over the size limit' : "an answer that is not the protocol's";
    return new TwopcError('outcome-unknown', `${this.where(op)}: HTTP ${answer.status} with ${what}`, { participant: this.name, status: answer.status });
  }

  private aborted(branch: BranchRef, message: string, cause?: unknown): TransactionAbortedError {
    return new TransactionAbortedError(branch.txId, { cause: 'vote-no', message, branchId: branch.branchId, participant: this.name }, { cause });
  }

  /**
   * Names the participant, never its URL: these messages reach API clients
   * (as abort reasons), and a participant's address is internal. Operators
   * find the URL in the transaction's branches (admin API, `twopc show`).
   */
  private where(op: string): string {
    return `participant ${this.name}: ${op}`;
  }
}

function callBody(branch: BranchRef): { txId: string; branchId: number; gid: string } {
  return { txId: branch.txId, branchId: branch.branchId, gid: branch.gid };
}

function validated<T extends z.ZodType>(schema: T, answer: ParticipantResponse): z.output<T> | undefined {
  if (answer.text === undefined) return undefined;
  let json: unknown = answer.json;
  if (json === undefined) {
    try {
      json = JSON.parse(answer.text);
    } catch {
      return undefined;
    }
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** The transport error under a TwopcError('outcome-unknown') from `call`. */
function transportCause(e: unknown): unknown {
  return e instanceof TwopcError ? e.cause : e;
}

function errorCodes(e: unknown): string[] {
  const codes: string[] = [];
  const visit = (x: unknown, depth: number) => {
    if (!x || typeof x !== 'object' || depth > 3) return;
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    // Node's happy-eyeballs connect reports one error per address tried.
    for (const inner of (x as { errors?: unknown[] }).errors ?? []) visit(inner, depth + 1);
    visit((x as { cause?: unknown }).cause, depth + 1);
  };
  visit(e, 0);
  return codes;
}

/**
 * True only when every failure under `e` is one of connecting: the call never
 * reached the participant. A reset, a timeout or an unreachable host after the
 * request was written leaves the outcome unknown.
 */
function notConnected(e: unknown): boolean {
  const failures: boolean[] = [];
  const visit = (x: unknown, depth: number) => {
    if (!x || typeof x !== 'object' || depth > 3) return;
    const { code, syscall, errors } = x as { code?: unknown; syscall?: unknown; errors?: unknown[] };
    // Node's happy-eyeballs connect reports one error per address tried, under a summary code of its own.
    if (Array.isArray(errors) && errors.length > 0) for (const inner of errors) visit(inner, depth + 1);
    else if (typeof code === 'string') {
      failures.push(code === CONNECT_TIMEOUT || (CONNECT_FAILURES.has(code) && syscall === 'connect') || (LOOKUP_FAILURES.has(code) && syscall === 'getaddrinfo'));
    }
    visit((x as { cause?: unknown }).cause, depth + 1);
  };
  visit(transportCause(e), 0);
  return failures.length > 0 && failures.every(Boolean);
}

function isTimeout(e: unknown): boolean {
  // AbortSignal.timeout's reason is a DOMException: matched by name, not by class.
  return (e as { name?: unknown } | undefined)?.name === 'TimeoutError' || errorCodes(e).some((c) => c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_BODY_TIMEOUT');
}

function causeMessage(e: unknown): string {
  const codes = errorCodes(transportCause(e));
  const message = scrubAddresses(errorMessage(transportCause(e)) || 'connection failed');
  return codes.length > 0 && !message.includes(codes[0]) ? `${message} (${codes[0]})` : message;
}

/** Said in place of an address a transport error named. */
const HIDDEN = '<participant address>';

/**
 * Transport errors name the address they failed on; abort reasons, which
 * reach API clients, must not. The forms seen: `connect ECONNREFUSED
 * 10.0.0.7:4001` (and IPv6, bracketed or not), `getaddrinfo ENOTFOUND
 * payments.internal`, undici's `(attempted address: payments.internal:4001,
 * timeout: 5000ms)`, TLS's `Host: payments.internal. is not in the cert's
 * altnames: DNS:payments.example`, and any `host:port` or URL.
 */
function scrubAddresses(message: string): string {
  return message
    .replace(/\bhttps?:\/\/\S+/g, HIDDEN)
    .replace(/\b(ENOTFOUND|EAI_AGAIN)\s+\S+/g, `$1 ${HIDDEN}`)
    .replace(/\b(attempted address(?:es)?:\s*)[^,)]+/gi, `$1${HIDDEN}`)
    .replace(/\b(Host|IP):\s*\S+/g, `$1: ${HIDDEN}`)
    .replace(/\b(DNS|IP Address|URI):[^\s,]+/g, `$1:${HIDDEN}`)
    .replace(/\[[0-9a-f:.]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?/gi, HIDDEN)
    // IPv6 unbracketed: with a '::', or all eight groups (so a time like 10:06:00 stays).
    .replace(/(?<![\w:.])(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}(?::\d+)?(?![\w:])|(?<![\w:.])[0-9a-f:]*::[0-9a-f:]*(?:%\w+(?::\d+)?)?(?![\w:])/gi, HIDDEN)
    .replace(/\b(?=[a-z0-9.-]*[a-z])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.?:\d{1,5}\b/gi, HIDDEN);
}
