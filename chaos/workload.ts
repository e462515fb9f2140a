import type { Leg, TransferRequest } from './bank-schema';
import type { CallRecord, ClientOutcome, History, TxKind, TxRecord } from './history';
import type { Rng } from './random';

/** Where the bank's clients send their calls. */
export interface BankEndpoints {
  /** Coordinator API base URL. */
  api: string;
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
  /** May another transaction start? (the run's transaction count or duration) */
  claim(): boolean;
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
  const worker = async () => {
    while (o.claim()) {
      // Drawn synchronously, in claim order: plan n is the same in every run of a seed.
      const plan = planTransfer(o.rng, seq++, o.services.length, o.accountsPerLedger);
      await runTransfer(o, plan);
    }
  };
  await Promise.all(Array.from({ length: o.workers }, worker));
}

async function runTransfer(o: WorkloadOptions, plan: TransferPlan): Promise<void> {
  const auth = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' };
  const begunAt = Date.now();
  const calls: CallRecord[] = [];
  let id: string | undefined;
  for (let attempt = 0; id === undefined; attempt++) {
    const begin = await call('begin', `${o.api}/v1/transactions`, auth, { timeoutMs: o.txTimeoutMs, metadata: { chaos: plan.seq } }, TIMEOUTS.begin);
    if (begin.status === 201 && typeof begin.body?.id === 'string') {
      id = begin.body.id;
      calls.push(begin.record);
      break;
    }
    // Nothing carries this id yet, so a begin that did happen is harmless: the coordinator aborts it at its timeout.
    o.history.beginFailures += 1;
    if (o.stopping()) return;
    await sleep(Math.min(1_000, 50 * 2 ** Math.min(attempt, 5)));
  }
  const txId = id!;
  const headers = { ...auth, 'twopc-transaction': txId };
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
  }
  let outcome: ClientOutcome;
  let why: string;
  let commitSent = false;
  if (failedCall !== undefined || plan.kind === 'client-abort') {
    const abort = await call('abort', `${o.api}/v1/transactions/${txId}/abort`, auth, {}, TIMEOUTS.abort);
    calls.push(abort.record);
    outcome = 'failed';
    why = `${failedCall ? `${failedCall}, then ` : ''}abort ${describe(abort.record)}`;
  } else if (plan.kind === 'abandon') {
    outcome = 'failed';
    why = 'abandoned: neither commit nor abort sent';
  } else {
    commitSent = true;
    const commit = await call('commit', `${o.api}/v1/transactions/${txId}/commit`, auth, {}, TIMEOUTS.commit);
    calls.push(commit.record);
    why = `commit ${describe(commit.record)}`;
    if (commit.status === 200 || commit.status === 202) outcome = 'ok';
    else if (commit.status === 409 && commit.record.code === 'transaction-aborted') outcome = 'failed';
    else outcome = 'unknown';
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
}

interface CallResult {
  status: number | null;
  body?: { id?: unknown; code?: unknown };
  record: CallRecord;
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
    return { status: res.status, body: parsed, record: { what, status: res.status, ...(code ? { code } : {}), ms: Date.now() - started } };
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
