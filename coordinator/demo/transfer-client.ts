import { Agent, request } from 'undici';
import { CoordinatorClient, TransactionAbortedError, withTransaction } from '../../participant-sdk/src';
import { Bank, Leg, legsInLockOrder, PlannedTransfer } from './transfer-plan';

/** How one transfer ended, from the client's side. */
export type TransferOutcome =
  | { state: 'committed'; txId: string }
  /** Ended in abort: nothing of it is visible in either bank. */
  | { state: 'aborted'; txId: string; reason: string; overdraft: boolean }
  /** Something unexpected: the outcome may be unknown (the check then tells). */
  | { state: 'failed'; txId?: string; error: string };

/** Options of {@link BankClient}. */
export interface BankClientOptions {
  coordinatorUrl: string;
  apiToken: string;
  /** Base URL of each bank's account service. */
  banks: Readonly<Record<Bank, string>>;
  /** Keep-alive connections per service and to the coordinator: the client's concurrency. */
  connections: number;
  /** Transaction timeout: a transfer not committed by then is aborted by the coordinator. */
  timeoutMs?: number;
}

/** A bank service refused a leg (its problem `code`: `insufficient-funds`, `no-such-account`, ...). */
class LegRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The application that moves money: begins a global transaction at the
 * coordinator, calls each bank's service with the transaction in the
 * `twopc-transaction` header, then commits — or aborts if a service refused
 * its part.
 *
 * @example
 * const client = new BankClient({ coordinatorUrl, apiToken, banks: { alpha: 'http://127.0.0.1:4001', beta: 'http://127.0.0.1:4002' }, connections: 8 });
 * const outcome = await client.transfer(plannedTransfer); // { state: 'committed', txId } | ...
 */
export class BankClient {
  private readonly coordinator: CoordinatorClient;
  private readonly agent: Agent;

  constructor(private readonly options: BankClientOptions) {
    this.coordinator = new CoordinatorClient({ url: options.coordinatorUrl, token: options.apiToken, connections: options.connections });
    this.agent = new Agent({ connections: options.connections, keepAliveTimeout: 30_000 });
  }

  async transfer(t: PlannedTransfer): Promise<TransferOutcome> {
    let txId: string | undefined;
    try {
      txId = (await this.coordinator.begin({ timeoutMs: this.options.timeoutMs ?? 30_000, metadata: { transfer: t.index } })).id;
      for (const leg of legsInLockOrder(t)) await this.callLeg(txId, leg);
    } catch (e) {
      // The application that began the transaction owns the abort. The refusing
      // bank already rolled its branch back; this rolls back the other one now
      // instead of leaving its row locked until the timeout.
      if (txId) await this.coordinator.abort(txId).catch(() => undefined);
      if (txId && e instanceof LegRefused) return { state: 'aborted', txId, reason: e.message, overdraft: t.overdraft };
      return { state: 'failed', ...(txId ? { txId } : {}), error: e instanceof Error ? e.message : String(e) };
    }
    try {
      await this.coordinator.commit(txId);
      return { state: 'committed', txId };
    } catch (e) {
      // A branch voted no at PREPARE: the coordinator aborted everywhere and says why.
      if (e instanceof TransactionAbortedError) return { state: 'aborted', txId, reason: e.reason.message, overdraft: t.overdraft };
      return { state: 'failed', txId, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.coordinator.close(), this.agent.close()]);
  }

  private async callLeg(txId: string, leg: Leg): Promise<void> {
    const res = await request(`${this.options.banks[leg.bank]}/${leg.kind}`, {
      method: 'POST',
      headers: withTransaction(txId, { 'content-type': 'application/json' }),
      body: JSON.stringify({ account: leg.account, amount: leg.amount }),
      dispatcher: this.agent,
    });
    const text = await res.body.text();
    if (res.statusCode === 200) return;
    const problem = parseProblem(text);
    const what = `${leg.kind} of ${leg.amount} at ${leg.bank} account ${leg.account}`;
    if (res.statusCode === 409 || res.statusCode === 404) throw new LegRefused(problem.code ?? String(res.statusCode), `${what} refused: ${problem.detail ?? text}`);
    throw new Error(`${what} failed (HTTP ${res.statusCode}): ${problem.detail ?? text}`);
  }
}

function parseProblem(text: string): { code?: string; detail?: string } {
  try {
    const body = JSON.parse(text) as { code?: unknown; detail?: unknown };
    return { ...(typeof body.code === 'string' ? { code: body.code } : {}), ...(typeof body.detail === 'string' ? { detail: body.detail } : {}) };
  } catch {
    return {};
  }
}
