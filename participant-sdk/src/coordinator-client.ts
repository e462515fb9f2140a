import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Answer, CoordinatorHttp } from './coordinator-http';
import { httpUrlListSchema, httpUrlSchema, resolveCoordinatorUrls } from './coordinator-urls';
import { AbortReason, ErrorCode, TransactionAbortedError, TwopcError } from './errors';
import { isTxId } from './gid';
import { mintCarriedTxId, type CarriedCapability, type CarriedRegistration } from './carried-registration';
import { errorFromProblem } from './problem';
import {
  BeginAnswer,
  BeginRequest,
  EnlistAnswer,
  EnlistRequest,
  TransactionAnswer,
  beginAnswerSchema,
  enlistAnswerSchema,
  problemSchema,
  transactionAnswerSchema,
} from './wire';

/**
 * Options of {@link CoordinatorClient}. Give `url` (one coordinator, or a
 * load balancer in front of several) or `urls` (several coordinator
 * instances sharing one decision log: the client fails over between them).
 *
 * @example
 * new CoordinatorClient({ url: 'http://127.0.0.1:7070', token: process.env.TWOPC_TOKEN })
 * new CoordinatorClient({ urls: ['http://twopc-a:7070', 'http://twopc-b:7070'], token: process.env.TWOPC_TOKEN })
 */
export interface CoordinatorClientOptions {
  /** Base URL of the coordinator service (`/v1/...` is appended). */
  url?: string;
  /**
   * Base URLs of several instances of one coordinator cluster, in order of
   * preference. A call starts at the instance that answered last (at first,
   * the first one) and moves on to the next when it gets no answer or a 503
   * (see `retries` for which calls may move on). Give `url` or `urls`, not both.
   */
  urls?: string[];
  /** Bearer token of the coordinator API. */
  token?: string;
  /** Per call, every attempt and pause included, until the answer's last byte. Default 60 s: a commit waits for every branch's vote. */
  timeoutMs?: number;
  /**
   * One attempt, at most: after it the call moves on to the next URL (within
   * `timeoutMs`). Default `timeoutMs`, since a commit's answer can take as
   * long as the coordinator waits for votes; with several URLs, set it to
   * leave an instance that hangs (paused, not crashed) sooner.
   */
  attemptTimeoutMs?: number;
  /**
   * Repeats of a call, beyond one attempt per URL, with a growing pause (at
   * least the answer's Retry-After). Default 2. Status, commit and abort are
   * repeated on the next URL after no answer, a 503 (except
   * `outcome-unknown`: that is the commit's outcome) or a proxy's 502/504:
   * a GET only reads, and commit and abort are idempotent by transaction id.
   * Begin and enlist are not idempotent by themselves: they carry an
   * Idempotency-Key, which only the instance that got them remembers. They
   * move on only when the instance surely did not act on them (no connection
   * was made, or a 503 `not-ready`, `shutting-down` or `fenced`); once they
   * may have reached one, they are repeated there only, under the same key.
   */
  retries?: number;
  /** Keep-alive connections to each coordinator URL, at most. Default 16. */
  connections?: number;
}

/** Options of {@link CoordinatorClient.commit}. */
export interface CommitOptions {
  /**
   * `completed` (default): the answer waits for phase 2 (up to the
   * coordinator's commitWaitMs). `decided`: answered as soon as the commit
   * decision is durable (`phaseTwoPending: true`); every branch then commits,
   * but a read right after the answer may not see it yet on every participant.
   */
  answerAt?: 'completed' | 'decided';
  /**
   * Carried registration (a transaction from `open` with `carried: true`):
   * the registrations the services answered (`registrationFrom`). The
   * coordinator records the transaction with them before any PREPARE.
   */
  registrations?: readonly CarriedRegistration[];
}

/** Options of {@link CoordinatorClient.abort}. */
export interface AbortOptions {
  /** Recorded as the abort's reason (cause `application`). */
  reason?: string;
  /** Carried abort (a transaction from `open` with `carried: true`): the registrations the services answered (`registrationFrom`). */
  registrations?: readonly CarriedRegistration[];
}

/** A transaction `open` started: with `carried`, its id was minted here and services answer registrations the commit must carry. */
export interface OpenedTransaction {
  id: string;
  carried: boolean;
}

/** What `commit` answers when the transaction committed. */
export interface CommitOutcome {
  id: string;
  state: 'committed';
  /** The decision is durable but some branch has not acknowledged phase 2 yet (202); the coordinator keeps retrying. */
  phaseTwoPending: boolean;
}

const clientOptionsSchema = z
  .object({
    url: httpUrlSchema.optional(),
    urls: httpUrlListSchema.optional(),
    token: z.string().min(1, 'must not be empty').optional(),
    timeoutMs: z.number().int('must be an integer').positive('must be > 0').default(60_000),
    attemptTimeoutMs: z.number().int('must be an integer').positive('must be > 0').optional(),
    retries: z.number().int('must be an integer').min(0, 'must be >= 0').max(10, 'must be <= 10').default(2),
    connections: z.number().int('must be an integer').positive('must be > 0').default(16),
  })
  .transform(({ url, urls, ...rest }, ctx) => ({
    ...rest,
    urls: resolveCoordinatorUrls(url, urls, { single: 'url', many: 'urls' }, ctx),
    attemptTimeoutMs: Math.min(rest.attemptTimeoutMs ?? rest.timeoutMs, rest.timeoutMs),
  }));

// The coordinator's answer to a commit or abort that ended in abort: `reason`
// is the engine's AbortReason, or just a message.
const abortReasonSchema = z.object({ cause: z.string(), message: z.string() }).passthrough();
const abortedAnswerSchema = z.object({ state: z.literal('aborted'), reason: z.union([z.string(), abortReasonSchema]).optional() }).passthrough();
const committedAnswerSchema = z.object({ state: z.enum(['committed', 'completed']) }).passthrough();
const abortAnswerSchema = z.object({ state: z.literal('aborted') }).passthrough();
const capabilitiesSchema = z.object({ carriedRegistration: z.object({ gidPrefix: z.string(), timeoutMs: z.number().int().positive() }).optional() }).passthrough();

/** What `GET /v1/capabilities` says the coordinator offers. */
export interface Capabilities {
  carriedRegistration?: CarriedCapability;
}

/**
 * A client of the coordinator's HTTP API (SPEC §5), over one keep-alive
 * connection pool per coordinator URL, failing over between the URLs as
 * `retries` describes. Errors are TwopcErrors carrying the coordinator's problem
 * `code`; a commit that ended in abort throws TransactionAbortedError.
 *
 * @example
 * const twopc = new CoordinatorClient({ url: 'http://127.0.0.1:7070', token });
 * const { id } = await twopc.begin({ timeoutMs: 10_000 });
 * await fetch(ordersUrl, { method: 'POST', headers: withTransaction(id, { 'content-type': 'application/json' }), body });
 * await twopc.commit(id); // throws TransactionAbortedError if a branch voted no
 */
export class CoordinatorClient {
  private readonly http: CoordinatorHttp;
  /** Until then, enlists leave `accepts` out: the coordinator refused it (see enlist). */
  private acceptsRefusedUntil = 0;
  /** What the coordinator offers (GET /v1/capabilities), read once. */
  private capabilitiesRead: Promise<Capabilities> | undefined;

  constructor(options: CoordinatorClientOptions) {
    const parsed = clientOptionsSchema.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.map(String).join('.') || 'options';
      throw new TwopcError('invalid-config', `CoordinatorClient ${field} ${issue.message}`, { field });
    }
    this.http = new CoordinatorHttp(parsed.data);
  }

  /**
   * Begins a transaction. Retried under one Idempotency-Key, and on the same
   * instance once it may have got it, so a lost answer does not begin a second one.
   */
  async begin(options: BeginRequest = {}): Promise<BeginAnswer> {
    const answer = await this.http.call('POST', '/v1/transactions', 'keyed', options, { idempotencyKey: randomUUID() });
    if (answer.status === 201 || answer.status === 200) return this.parse(beginAnswerSchema, answer, 'begin');
    throw this.failure(answer, 'begin', 'coordinator-unavailable');
  }

  /**
   * Runs two-phase commit (`options.answerAt`: when to be answered). Idempotent by transaction id: a retry after a lost
   * answer or a 503 (done here, on the next URL) gets the first outcome.
   * Throws TransactionAbortedError (with the coordinator's reason) when the
   * transaction aborted, `outcome-unknown` when no answer came
   * (`coordinator-unavailable` when it was never reached: not committed).
   */
  async commit(id: string, options: CommitOptions = {}): Promise<CommitOutcome> {
    const path = `/v1/transactions/${checkId(id)}/commit`;
    const body = bodyOf({ answerAt: options.answerAt, registrations: options.registrations });
    const answer = await this.http.call('POST', path, 'by-id', body, { transportCode: 'outcome-unknown' });
    if (answer.status === 200 || answer.status === 202) {
      this.parse(committedAnswerSchema, answer, 'commit');
      return { id, state: 'committed', phaseTwoPending: answer.status === 202 };
    }
    const aborted = abortedError(id, answer);
    if (aborted) throw aborted;
    throw this.failure(answer, 'commit', 'outcome-unknown');
  }

  /**
   * What the coordinator offers beyond the baseline protocol, read once per
   * client: `carriedRegistration` when it takes carried commits. A coordinator
   * without the route (an older one: 404) offers nothing.
   */
  capabilities(): Promise<Capabilities> {
    this.capabilitiesRead ??= this.readCapabilities().catch((e: unknown) => {
      this.capabilitiesRead = undefined;
      throw e;
    });
    return this.capabilitiesRead;
  }

  /**
   * Starts a transaction. With `carried` (and a coordinator that offers
   * carried registration), the id is minted here with no call at all: pass it
   * with `withCarriedTransaction(id)`, collect each service's
   * `registrationFrom(response)`, and commit with `registrations`. Otherwise
   * it is `begin`. A carried transaction has no metadata and the timeout the
   * coordinator advertises (nothing reaches the coordinator before the
   * commit): with `timeoutMs` or `metadata`, `open` begins, so they hold.
   */
  async open(options: { carried?: boolean } & BeginRequest = {}): Promise<OpenedTransaction> {
    const { carried, ...begin } = options;
    const needsBegin = begin.timeoutMs !== undefined || begin.metadata !== undefined;
    if (carried && !needsBegin && (await this.capabilities()).carriedRegistration) return { id: mintCarriedTxId(), carried: true };
    return { id: (await this.begin(begin)).id, carried: false };
  }

  private async readCapabilities(): Promise<Capabilities> {
    const answer = await this.http.call('GET', '/v1/capabilities', 'by-id');
    if (answer.status === 404) return {};
    if (answer.status === 200) return this.parse(capabilitiesSchema, answer, 'capabilities');
    throw this.failure(answer, 'capabilities', 'coordinator-unavailable');
  }

  /**
   * Aborts a transaction that has no commit decision. Idempotent. `state-conflict` means the abort
   * was not this call's to make (the transaction committed, is committing in one phase, or has other
   * branches than `registrations` name): it does not say the transaction committed; read `get(id)`.
   * A carried transaction (`open` with `carried: true`) is aborted with the registrations its
   * services answered, those its commit would have carried: the coordinator records it if it has
   * not, and rolls each branch back now instead of at its timeout (docs/protocol.md, "Carried abort").
   * A coordinator that takes no registrations on an abort (older, or carried registration off)
   * refuses the whole call: `invalid-input` naming `registrations`, nothing aborted.
   *
   * @example
   * const tx = await twopc.open({ carried: true });
   * const registrations = []; // each service's registrationFrom(response)
   * // With no registration answered yet there is nothing to roll back: the coordinator never heard of the id.
   * if (!tx.carried) await twopc.abort(tx.id);
   * else if (registrations.length > 0) await twopc.abort(tx.id, { registrations });
   */
  async abort(id: string, options: AbortOptions = {}): Promise<{ id: string; state: 'aborted' }> {
    const body = bodyOf({ reason: options.reason, registrations: options.registrations });
    const answer = await this.http.call('POST', `/v1/transactions/${checkId(id)}/abort`, 'by-id', body, { transportCode: 'outcome-unknown' });
    if (answer.status === 200) {
      this.parse(abortAnswerSchema, answer, 'abort');
      return { id, state: 'aborted' };
    }
    const failure = this.failure(answer, 'abort', 'outcome-unknown');
    if (options.registrations && answer.status === 400 && String(failure.details.field ?? '').startsWith('registrations')) {
      // Said plainly: the services' branches keep their row locks until their timeout.
      const message = `coordinator abort: the coordinator refused the registrations (${failure.message}); nothing was aborted, and the services' branches stay held until their timeout`;
      throw new TwopcError('invalid-input', message, failure.details);
    }
    throw failure;
  }

  /** The transaction's state and decision; `not-found` (from the coordinator's own problem answer) if it has no record of it. */
  async get(id: string): Promise<TransactionAnswer> {
    const answer = await this.http.call('GET', `/v1/transactions/${checkId(id)}`, 'by-id');
    if (answer.status === 200) return this.parse(transactionAnswerSchema, answer, 'get');
    throw this.failure(answer, 'get', 'coordinator-unavailable');
  }

  /**
   * Registers a branch (SPEC §3: before its PREPARE) and returns its GID.
   * Retried under one Idempotency-Key, and never on another instance once
   * one may have got it: a retry must not register a second branch, which
   * nobody would prepare and which would abort the transaction.
   */
  async enlist(txId: string, body: EnlistRequest): Promise<EnlistAnswer> {
    const path = `/v1/transactions/${checkId(txId)}/branches`;
    const { accepts, ...plain } = body;
    const offer = accepts !== undefined && Date.now() >= this.acceptsRefusedUntil;
    let answer = await this.http.call('POST', path, 'keyed', offer ? body : plain, { idempotencyKey: randomUUID() });
    if (offer && refusesAccepts(answer)) {
      // A coordinator older than `accepts` (its enlist body is strict) refused the whole
      // enlist, so nothing was registered: enlist again without it, and for a while offer it no more.
      this.acceptsRefusedUntil = Date.now() + ACCEPTS_RETRY_AFTER_MS;
      answer = await this.http.call('POST', path, 'keyed', plain, { idempotencyKey: randomUUID() });
    }
    if (answer.status === 201 || answer.status === 200) return this.parse(enlistAnswerSchema, answer, 'enlist');
    const aborted = abortedError(txId, answer);
    if (aborted) throw aborted;
    throw this.failure(answer, 'enlist', 'coordinator-unavailable');
  }

  /** Closes the connection pools. */
  async close(): Promise<void> {
    await this.http.close();
  }

  private parse<T>(schema: z.ZodType<T>, answer: Answer, what: string): T {
    const parsed = schema.safeParse(answer.body);
    if (parsed.success) return parsed.data;
    throw new TwopcError('coordinator-unavailable', `coordinator ${what}: unexpected answer (${answer.status}): ${parsed.error.issues[0].message}`, { status: answer.status });
  }

  private failure(answer: Answer, what: string, fallback: ErrorCode): TwopcError {
    const problem = answer.problem ? problemSchema.safeParse(answer.body) : undefined;
    if (problem?.success) return errorFromProblem(problem.data, fallback, { operation: what });
    return new TwopcError(fallback, `coordinator ${what}: unexpected answer ${answer.status}`, { operation: what, status: answer.status });
  }
}

/** A 409 that says the transaction aborted, as TransactionAbortedError; undefined otherwise. */
function abortedError(txId: string, answer: Answer): TransactionAbortedError | undefined {
  if (answer.status !== 409) return undefined;
  const direct = abortedAnswerSchema.safeParse(answer.body);
  const problem = answer.problem ? problemSchema.passthrough().safeParse(answer.body) : undefined;
  let reason: unknown;
  if (direct.success) reason = direct.data.reason;
  else if (problem?.success && problem.data.code === 'transaction-aborted') reason = (problem.data as { reason?: unknown }).reason ?? problem.data.detail;
  else return undefined;
  return new TransactionAbortedError(txId, toAbortReason(reason));
}

function toAbortReason(reason: unknown): AbortReason {
  const parsed = abortReasonSchema.safeParse(reason);
  if (parsed.success) return parsed.data as AbortReason;
  return { cause: 'aborted', message: typeof reason === 'string' && reason ? reason : 'transaction aborted' };
}

/** How long a coordinator that refused `accepts` gets enlists without it (it may be upgraded meanwhile). */
const ACCEPTS_RETRY_AFTER_MS = 5 * 60_000;

/** A 400 problem that names `accepts` (an unknown key to an older coordinator's strict enlist body). */
function refusesAccepts(answer: Answer): boolean {
  if (answer.status !== 400 || !answer.problem) return false;
  const problem = problemSchema.safeParse(answer.body);
  return problem.success && (problem.data.field === 'accepts' || /\baccepts\b/.test(problem.data.detail ?? ''));
}

/** A call's JSON body: the fields given, or none at all (undefined) when none is. */
function bodyOf(fields: Record<string, unknown>): Record<string, unknown> | undefined {
  const given = Object.entries(fields).filter(([, value]) => value !== undefined);
  return given.length > 0 ? Object.fromEntries(given) : undefined;
}

function checkId(id: string): string {
  if (!isTxId(id)) throw new TwopcError('invalid-input', `id must be a lower-case UUID (got ${JSON.stringify(id)})`, { field: 'id' });
  return id;
}
