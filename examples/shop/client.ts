import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { CoordinatorClient, TransactionAbortedError, withTransaction } from '../../participant-sdk/src';
import type { ChargeBody, OrderBody, ReservationBody } from './services/bodies';
import type { OrderKind, PlannedOrder } from './plan';

export const SERVICES = ['orders', 'inventory', 'payments'] as const;
export type Service = (typeof SERVICES)[number];

/** Why a service refused its part (its problem `code`), or `other` for an abort without one. */
export type AbortCode = 'out-of-stock' | 'insufficient-funds' | 'other';

/** What the client was told about one order. */
export type OrderOutcome = { index: number; kind: OrderKind; orderId: string } & (
  | { state: 'committed'; txId: string; total: number }
  /** Ended in abort: nothing of it is in any of the three databases. */
  | { state: 'aborted'; txId: string; code: AbortCode; reason: string }
  /** Something unexpected: the outcome may be unknown (the check then tells). */
  | { state: 'failed'; txId?: string; error: string }
);

export interface ShopClientOptions {
  coordinatorUrl: string;
  apiToken: string;
  /** Base URL of each service. */
  services: Readonly<Record<Service, string>>;
  /** Keep-alive connections per service and to the coordinator: the client's concurrency. */
  connections: number;
  /** Transaction timeout: an order not committed by then is aborted by the coordinator. */
  timeoutMs?: number;
}

// The services' business refusals (services/refusal.ts); any other error answer is a failure of the run.
const REFUSALS = new Set(['out-of-stock', 'insufficient-funds', 'no-such-product', 'no-such-customer']);

/** A service refused its part of the order (409 or 404, with its problem's code). */
class Refused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The shop's front: places an order as one global transaction. It begins
 * the transaction at the coordinator, calls the orders service (records the
 * order, answers its total), the inventory service (reserves the goods) and
 * the payments service (charges the total), each with the transaction in
 * the `twopc-transaction` header, then commits — or aborts when a service
 * refused its part, which undoes what the others did in their branches.
 *
 * @example
 * const client = new ShopClient({ coordinatorUrl, apiToken, services: { orders: '...', inventory: '...', payments: '...' }, connections: 8 });
 * const outcome = await client.place(plannedOrder); // { state: 'committed', orderId, txId, total } | ...
 */
export class ShopClient {
  private readonly coordinator: CoordinatorClient;
  private readonly agent: Agent;

  constructor(private readonly options: ShopClientOptions) {
    this.coordinator = new CoordinatorClient({ url: options.coordinatorUrl, token: options.apiToken, connections: options.connections });
    this.agent = new Agent({ connections: options.connections, keepAliveTimeout: 30_000 });
  }

  async place(order: PlannedOrder): Promise<OrderOutcome> {
    const orderId = randomUUID();
    const told = { index: order.index, kind: order.kind, orderId };
    let txId: string | undefined;
    let total: number;
    try {
      txId = (await this.coordinator.begin({ timeoutMs: this.options.timeoutMs ?? 30_000, metadata: { order: orderId } })).id;
      const recorded = await this.call<OrderBody, { total: number }>(txId, 'orders', '/orders', { orderId, customer: order.customer, lines: order.lines });
      total = recorded.total;
      await this.call<ReservationBody>(txId, 'inventory', '/reservations', { orderId, lines: order.lines.map(({ product, quantity }) => ({ product, quantity })) });
      await this.call<ChargeBody>(txId, 'payments', '/charges', { orderId, customer: order.customer, amount: total });
    } catch (e) {
      // The application that began the transaction owns the abort. The refusing service
      // already rolled its branch back; this rolls back the others' now, instead of
      // leaving their rows locked until the timeout.
      if (txId) await this.coordinator.abort(txId).catch(() => undefined);
      if (txId && e instanceof Refused) return { ...told, state: 'aborted', txId, code: abortCode(e.code), reason: e.message };
      return { ...told, state: 'failed', ...(txId ? { txId } : {}), error: e instanceof Error ? e.message : String(e) };
    }
    try {
      await this.coordinator.commit(txId);
      return { ...told, state: 'committed', txId, total };
    } catch (e) {
      // A branch voted no at PREPARE: the coordinator aborted everywhere and says why.
      if (e instanceof TransactionAbortedError) return { ...told, state: 'aborted', txId, code: 'other', reason: e.reason.message };
      return { ...told, state: 'failed', txId, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.coordinator.close(), this.agent.close()]);
  }

  private async call<B, A = unknown>(txId: string, service: Service, path: string, body: B): Promise<A> {
    const res = await request(`${this.options.services[service]}${path}`, {
      method: 'POST',
      headers: withTransaction(txId, { 'content-type': 'application/json' }),
      body: JSON.stringify(body),
      dispatcher: this.agent,
    });
    const text = await res.body.text();
    if (res.statusCode === 201) return JSON.parse(text) as A;
    const problem = parseProblem(text);
    if (problem.code && REFUSALS.has(problem.code)) throw new Refused(problem.code, `${service} refused: ${problem.detail ?? text}`);
    throw new Error(`${service} ${path} failed (HTTP ${res.statusCode}): ${problem.detail ?? text}`);
  }
}

function abortCode(code: string): AbortCode {
  return code === 'out-of-stock' || code === 'insufficient-funds' ? code : 'other';
}

function parseProblem(text: string): { code?: string; detail?: string } {
  try {
    const body = JSON.parse(text) as { code?: unknown; detail?: unknown };
    return { ...(typeof body.code === 'string' ? { code: body.code } : {}), ...(typeof body.detail === 'string' ? { detail: body.detail } : {}) };
  } catch {
    return {};
  }
}
