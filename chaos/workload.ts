import { mintCarriedTxId, registrationFrom, withCarriedTransaction, type CarriedRegistration } from '../participant-sdk/src';
import type { Leg, TransferRequest } from './bank-schema';
import type { CallRecord, ClientOutcome, History, TxKind, TxRecord } from './history';
import { Rng } from './random';

/** Where the bank's clients send their calls. */
export interface BankEndpoints {
  /** Coordinator API base URL. */
  api: string;
  /**
   * Several coordinator instances: every begin, commit and abort goes to one
   * of them drawn at random among those that answer, and a call that gets no
   * answer (or 503) is sent again to another. Absent or one: every call goes to `api`.
   */
  instances?: ReadonlyArray<{ name: string; url: string }>;
  token: string;
  /** Base URL of each ledger's service, indexed by ledger number. */
  services: readonly string[];
  /** Service names (for the history), indexed by ledger number. */
  names: readonly string[];
  accountsPerLedger: number;
}

export interface WorkloadOptions extends BankEndpoints {
  workers: number;
  /** The workload's own stream: the n-th transaction's plan depends on the seed only. */
  rng: Rng;
  history: History;
  txTimeoutMs: number;
  /**
   * Carried registration: no begin, the client mints the id; each service
   * call asks for a carried branch and answers its signed registration, and
   * the commit carries them all. A transfer the client gives up (a failed
   * call, `client-abort`) is aborted with the registrations it got (carried
   * abort); one with none, or `abandon`ed, is simply never committed, and its
   * branches end by their timeout at the services.
   */
  carried?: boolean;
  /** May another transaction start? (the run's transaction count or duration) */
  claim(): boolean;
  /** Which instance each call goes to (several instances); apart from `rng`, so the plans stay those of the seed. */
  instanceRng?: Rng;
  /** Hard stop: give up retrying a begin. */
  stopping(): boolean;
}

/** A transaction the workload will run, drawn from the seed. */
export interface TransferPlan {
  seq: number;
  kind: TxKind;
  mode: 'held' | 'eager';
  legs: Leg[];
  /** Ledgers to call, ascending: every client locks ledgers in one order (no deadlock spans databases). */
  ledgers: number[];
  sabotaged?: number;
}

// Shares of each kind. Abandoned transactions hold row locks until their timeout: keep them rare.
const KIND_WEIGHTS: Readonly<Record<TxKind, number>> = { pair: 45, triple: 18, local: 15, 'vote-no': 12, 'client-abort': 7, abandon: 3 };

const TIMEOUTS = { begin: 3_000, service: 6_000, commit: 8_000, abort: 5_000 };

/** Draws the `seq`-th transaction: kind, mode, ledgers, accounts, amounts. */
export function planTransfer(rng: Rng, seq: number, ledgerCount: number, accounts: number): TransferPlan {
  let kind = rng.weighted(KIND_WEIGHTS);
  if (kind === 'triple' && ledgerCount < 3) kind = 'pair';
  const mode = rng.chance(0.5) ? 'eager' : 'held';
  const amount = rng.int(1, 20);
  const account = () => rng.int(1, accounts);
  const distinctLedgers = (n: number) => rng.shuffle(Array.from({ length: ledgerCount }, (_, i) => i)).slice(0, n);
  let legs: Leg[];
  if (kind === 'local') {
    const [ledger] = distinctLedgers(1);
    const from = account();
    const to = (from % accounts) + 1;
    legs = [
      { ledger, leg: 0, account: from, delta: -amount },
      { ledger, leg: 1, account: to, delta: amount },
    ];
  } else if (kind === 'triple' || (kind === 'vote-no' && ledgerCount >= 3 && rng.chance(0.3))) {
    const [a, b, c] = distinctLedgers(3);
    const second = rng.int(1, 20);
    legs = [
      { ledger: a, leg: 0, account: account(), delta: -(amount + second) },
      { ledger: b, leg: 1, account: account(), delta: amount },
      { ledger: c, leg: 2, account: account(), delta: second },
    ];
  } else {
    const [a, b] = distinctLedgers(2);
    legs = [
      { ledger: a, leg: 0, account: account(), delta: -amount },
      { ledger: b, leg: 1, account: account(), delta: amount },
    ];
  }
  const ledgers = [...new Set(legs.map((l) => l.ledger))].sort((x, y) => x - y);
  const plan: TransferPlan = { seq, kind, mode, legs, ledgers };
  if (kind === 'vote-no') plan.sabotaged = rng.pick(ledgers);
  return plan;
}

/**
 * The bank's clients: `workers` loops, each taking the next plan, beginning
 * it at the coordinator, calling each ledger service with the
 * `twopc-transaction` header, then committing (or aborting, or walking
 * away, as the plan says), and recording what it saw in the history.
 */
export async function runWorkload(o: WorkloadOptions): Promise<void> {
  let seq = 0;
  // Which instance a call goes to is not part of the plan: it has a stream of its own (and timing decides which answer).
  const picker = o.instances && o.instances.length > 1 ? new InstancePicker(o.instances, o.instanceRng ?? new Rng(Date.now())) : undefined;
  const worker = async () => {
    let unreachableInARow = 0;
    while (o.claim()) {
      // Drawn synchronously, in claim order: plan n is the same in every run of a seed.
      const plan = planTransfer(o.rng, seq++, o.services.length, o.accountsPerLedger);
      const record = await runTransfer(o, plan, picker);
      // Carried transfers make no begin, whose retries hold an enlisting client back while the coordinator is down:
      // without this a client would spend the run's transactions in a burst of refused calls while a process restarts.
      unreachableInARow = o.carried && record && lastCallUnanswered(record) ? unreachableInARow + 1 : 0;
      if (unreachableInARow > 0) await sleep(Math.min(1_000, 50 * 2 ** Math.min(unreachableInARow, 5)));
    }
  };
  await Promise.all(Array.from({ length: o.workers }, worker));
}

/** Every commit call was refused before anything was sent (the coordinator's port had no listener: it was down). */
function neverReached(calls: readonly CallRecord[]): boolean {
  const commits = calls.filter((c) => c.what.startsWith('commit'));
  return commits.length > 0 && commits.every((c) => c.status === null && c.error === 'ECONNREFUSED');
}

/** Whether the transfer ended on a call that got no answer or a 5xx (a process down, a link cut). */
function lastCallUnanswered(record: TxRecord): boolean {
  const last = record.calls[record.calls.length - 1];
  return last !== undefined && (last.status === null || last.status >= 500);
}

async function runTransfer(o: WorkloadOptions, plan: TransferPlan, picker?: InstancePicker): Promise<TxRecord | undefined> {
  const auth = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' };
  const begunAt = Date.now();
  const calls: CallRecord[] = [];
  // Carried: the id is this client's, minted with no call.
  let id: string | undefined = o.carried ? mintCarriedTxId() : undefined;
  for (let attempt = 0; id === undefined; attempt++) {
    const at = picker?.pick();
    const begin = await call(at ? `begin@${at.name}` : 'begin', `${at?.url ?? o.api}/v1/transactions`, auth, { timeoutMs: o.txTimeoutMs, metadata: { chaos: plan.seq } }, TIMEOUTS.begin);
    if (at && begin.status === null) picker!.noAnswer(at);
    if (begin.status === 201 && typeof begin.body?.id === 'string') {
      id = begin.body.id;
      calls.push(begin.record);
      break;
    }
    // Nothing carries this id yet, so a begin that did happen is harmless: the coordinator aborts it at its timeout.
    o.history.beginFailures += 1;
    if (o.stopping()) return undefined;
    if (picker && attempt < picker.size) continue; // another instance may answer at once
    await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
  }
  const txId = id!;
  const headers = o.carried ? withCarriedTransaction(txId, auth) : { ...auth, 'twopc-transaction': txId };
  const registrations: CarriedRegistration[] = [];
  let failedCall: string | undefined;
  for (const ledger of plan.ledgers) {
    const body: TransferRequest = {
      legs: plan.legs.filter((l) => l.ledger === ledger).map(({ leg, account, delta }) => ({ leg, account, delta })),
      mode: plan.mode,
      ...(plan.sabotaged === ledger ? { sabotage: true } : {}),
    };
    const r = await call(`${o.names[ledger]} transfer`, `${o.services[ledger]}/transfer`, headers, body, TIMEOUTS.service);
    calls.push(r.record);
    if (r.status !== 200) {
      failedCall = `${o.names[ledger]} ${describe(r.record)}`;
      break;
    }
    if (o.carried) {
      const registration = carriedRegistrationOf(r);
      if (typeof registration === 'string') {
        failedCall = `${o.names[ledger]} 200 but ${registration}`;
        break;
      }
      registrations.push(registration);
    }
  }
  let outcome: ClientOutcome;
  let why: string;
  let commitSent = false;
  if (o.carried && (failedCall !== undefined || plan.kind === 'client-abort') && registrations.length > 0) {
    // Carried abort: the coordinator records the branches and rolls them back now. Never a commit sent, so
    // whatever the abort gets (even no answer), nothing may commit: the checker holds it to that.
    const abort = await callCoordinator(o, picker, calls, 'abort', `/v1/transactions/${txId}/abort`, auth, TIMEOUTS.abort, { registrations });
    outcome = 'failed';
    why = `${failedCall ? `${failedCall}, then ` : ''}carried abort ${describe(abort.record)}`;
  } else if (o.carried && (failedCall !== undefined || plan.kind === 'client-abort' || plan.kind === 'abandon')) {
    // Nothing to abort with (no registration came back) or walked away: nothing registered these branches,
    // so none can be prepared; each service rolls its own back at its timeout.
    outcome = 'failed';
    why = `${failedCall ? `${failedCall}, then ` : ''}carried: never committed (no abort call; the branches end by their timeout)`;
  } else if (failedCall !== undefined || plan.kind === 'client-abort') {
    const abort = await callCoordinator(o, picker, calls, 'abort', `/v1/transactions/${txId}/abort`, auth, TIMEOUTS.abort);
    outcome = 'failed';
    why = `${failedCall ? `${failedCall}, then ` : ''}abort ${describe(abort.record)}`;
  } else if (plan.kind === 'abandon') {
    outcome = 'failed';
    why = 'abandoned: neither commit nor abort sent';
  } else {
    commitSent = true;
    const body = o.carried ? { registrations } : {};
    const commit = await callCoordinator(o, picker, calls, 'commit', `/v1/transactions/${txId}/commit`, auth, TIMEOUTS.commit, body);
    why = `commit ${describe(commit.record)}`;
    if (commit.status === 200 || commit.status === 202) outcome = 'ok';
    else if (commit.status === 409 && commit.record.code === 'transaction-aborted') outcome = 'failed';
    else if (o.carried && neverReached(calls)) {
      // Nothing but the commit can register a carried branch, and no attempt of it reached the coordinator:
      // nothing may commit (the branches end by their timeout), which the checker then holds it to.
      commitSent = false;
      outcome = 'failed';
      why = `commit ${describe(commit.record)} on every attempt: it never reached the coordinator`;
    } else outcome = 'unknown';
  }
  const record: TxRecord = {
    seq: plan.seq,
    id: txId,
    kind: plan.kind,
    mode: plan.mode,
    legs: plan.legs,
    ledgers: plan.ledgers,
    ...(plan.sabotaged === undefined ? {} : { sabotaged: plan.sabotaged }),
    begunAt,
    endedAt: Date.now(),
    calls,
    commitSent,
    outcome,
    why,
  };
  o.history.add(record);
  return record;
}

/**
 * A commit or abort (idempotent by transaction id): with one instance, one
 * call. With several, a call that gets no answer or 503 (the instance is
 * down, paused, fenced or unready, or the owner it relays to is unreachable)
 * is sent again to another instance, a few times; the last answer counts
 * (the history keeps every call).
 */
async function callCoordinator(o: WorkloadOptions, picker: InstancePicker | undefined, calls: CallRecord[], what: string, path: string, headers: Record<string, string>, timeoutMs: number, body: object = {}): Promise<CallResult> {
  if (!picker && !o.carried) {
    const r = await call(what, `${o.api}${path}`, headers, body, timeoutMs);
    calls.push(r.record);
    return r;
  }
  if (!picker) return retriedCarriedCall(o, calls, what, path, headers, timeoutMs, body);
  const deadline = Date.now() + 2 * timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const at = picker.pick();
    const r = await call(`${what}@${at.name}`, `${at.url}${path}`, headers, body, timeoutMs);
    calls.push(r.record);
    if (r.status === null) picker.noAnswer(at);
    const again = r.status === null || r.status === 503;
    if (!again || attempt >= 2 * picker.size + 2 || Date.now() > deadline) return r;
    if (r.status === 503) await sleep(150);
  }
}

/**
 * A carried commit on one coordinator, sent again (same id, same
 * registrations: docs/protocol.md makes that idempotent) while it gets no
 * answer or 503, for a few seconds, as the SDK's client does. With no begin
 * to wait on, this is also what holds a client back while the coordinator is
 * down. The last answer counts; the history keeps every call.
 */
async function retriedCarriedCall(o: WorkloadOptions, calls: CallRecord[], what: string, path: string, headers: Record<string, string>, timeoutMs: number, body: object): Promise<CallResult> {
  const deadline = Date.now() + 2 * timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const r = await call(what, `${o.api}${path}`, headers, body, timeoutMs);
    calls.push(r.record);
    const again = r.status === null || r.status === 503;
    if (!again || attempt >= 6 || Date.now() > deadline || o.stopping()) return r;
    await sleep(Math.min(1_000, 100 * 2 ** attempt));
  }
}

/**
 * Chooses the instance of each call at random among those that answered
 * lately: one that left a call unanswered is passed over for a second
 * (unless none is left), as a client with several addresses would do.
 */
class InstancePicker {
  private readonly silentUntil = new Map<string, number>();

  constructor(
    private readonly instances: ReadonlyArray<{ name: string; url: string }>,
    private readonly rng: Rng,
  ) {}

  get size(): number {
    return this.instances.length;
  }

  pick(): { name: string; url: string } {
    const now = Date.now();
    const answering = this.instances.filter((i) => (this.silentUntil.get(i.url) ?? 0) <= now);
    return this.rng.pick(answering.length > 0 ? answering : this.instances);
  }

  noAnswer(instance: { url: string }): void {
    this.silentUntil.set(instance.url, Date.now() + 1_000);
  }
}

interface CallResult {
  status: number | null;
  body?: { id?: unknown; code?: unknown };
  /** The answer's headers (a carried branch's registration is one). */
  headers?: Headers;
  record: CallRecord;
}

/** The registration a service answered for its carried branch, or why there is none usable. */
function carriedRegistrationOf(r: CallResult): CarriedRegistration | string {
  try {
    return (r.headers && registrationFrom({ headers: r.headers })) ?? 'no registration';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** One POST; any transport failure becomes a record with `status: null` and the error, never a throw. */
async function call(what: string, url: string, headers: Record<string, string>, body: unknown, timeoutMs: number): Promise<CallResult> {
  const started = Date.now();
  try {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let parsed: CallResult['body'];
    try {
      parsed = JSON.parse(text) as CallResult['body'];
    } catch {
      parsed = undefined;
    }
    const code = typeof parsed?.code === 'string' ? parsed.code : undefined;
    return { status: res.status, body: parsed, headers: res.headers, record: { what, status: res.status, ...(code ? { code } : {}), ms: Date.now() - started } };
  } catch (e) {
    return { status: null, record: { what, status: null, error: transportError(e), ms: Date.now() - started } };
  }
}

/** `timeout`, `ECONNREFUSED`, `UND_ERR_SOCKET`... */
function transportError(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError') return 'timeout';
  return err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
}

function describe(r: CallRecord): string {
  if (r.status === null) return r.error ?? 'no answer';
  return r.code ? `${r.status} ${r.code}` : String(r.status);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
