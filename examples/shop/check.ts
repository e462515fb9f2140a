import type { OrderOutcome } from './client';
import type { ShopState } from './state';

/** What the databases opened with (the services' seeds). */
export interface Opening {
  /** product id → units in stock. */
  stock: ReadonlyMap<number, number>;
  /** customer id → balance. */
  balances: ReadonlyMap<number, number>;
}

export interface ProductTally {
  id: number;
  name: string;
  initial: number;
  stock: number;
  /** Units on committed orders' lines (the orders database). */
  sold: number;
}

export interface CustomerTally {
  id: number;
  opening: number;
  balance: number;
  /** Sum of the customer's charges (the payments database). */
  charged: number;
  /** Sum of the customer's orders' totals (the orders database). */
  ordered: number;
}

/** The shop's invariants, checked once everything is quiet; each list names what breaks one (empty: it holds). */
export interface ShopCheck {
  products: ProductTally[];
  customers: CustomerTally[];
  committedOrders: number;
  totalCharged: number;
  totalOrdered: number;
  /** Per product: stock left + units sold = initial stock. */
  stockNotConserved: string[];
  /** Per customer and in total: charges = order totals, and balance + charges = opening balance. */
  moneyNotConserved: string[];
  /** An order without its charge or its reservation, or a charge or reservation without its order. */
  unlinked: string[];
  /** An order whose charge is not its total (or not its customer's), whose reservation is not its lines, or whose total is not the sum of its lines. */
  mismatched: string[];
  /** Orders the client was told committed, not in all three databases. */
  lostCommits: string[];
  /** Orders the client was told aborted, in one of the databases. */
  visibleAborts: string[];
  /** Orders made to fail on a constraint (more than the stock, the piano) that committed. */
  impossibleCommits: string[];
  prepared: string[];
  /** Orders that neither committed nor aborted as a constraint said (the outcome is unknown). */
  failures: number;
  ok: boolean;
}

/** Checks the three databases against their opening and against what the client was told. */
export function checkShop(state: ShopState, opening: Opening, told: OrderOutcome[]): ShopCheck {
  const sold = new Map<number, number>();
  const ordered = new Map<number, number>();
  const mismatched: string[] = [];
  for (const [id, order] of state.orders) {
    let sum = 0;
    for (const [product, line] of order.lines) {
      sold.set(product, (sold.get(product) ?? 0) + line.quantity);
      sum += line.quantity * line.unitPrice;
    }
    ordered.set(order.customer, (ordered.get(order.customer) ?? 0) + order.total);
    if (sum !== order.total) mismatched.push(`order ${id}: total ${order.total}, lines add up to ${sum}`);
    const charge = state.charges.get(id);
    if (charge && (charge.amount !== order.total || charge.customer !== order.customer)) {
      mismatched.push(`order ${id}: ${order.total} for customer ${order.customer}, charged ${charge.amount} to customer ${charge.customer}`);
    }
    const reserved = state.reservations.get(id);
    if (reserved && !sameLines(reserved, order.lines)) mismatched.push(`order ${id}: reserved ${describe(reserved)}, ordered ${describe(new Map([...order.lines].map(([p, l]) => [p, l.quantity])))}`);
  }

  const products = state.products.map((p) => ({ id: p.id, name: p.name, initial: opening.stock.get(p.id) ?? NaN, stock: p.stock, sold: sold.get(p.id) ?? 0 }));
  const stockNotConserved = products.filter((p) => p.stock + p.sold !== p.initial).map((p) => `product ${p.id}: ${p.stock} left + ${p.sold} sold ≠ ${p.initial}`);
  for (const id of opening.stock.keys()) if (!products.some((p) => p.id === id)) stockNotConserved.push(`product ${id} is gone`);

  const charged = new Map<number, number>();
  for (const c of state.charges.values()) charged.set(c.customer, (charged.get(c.customer) ?? 0) + c.amount);
  const customers = state.customers.map((c) => ({ id: c.id, opening: opening.balances.get(c.id) ?? NaN, balance: c.balance, charged: charged.get(c.id) ?? 0, ordered: ordered.get(c.id) ?? 0 }));
  const totalCharged = sumOf(charged.values());
  const totalOrdered = sumOf(ordered.values());
  const moneyNotConserved = [
    ...customers.filter((c) => c.charged !== c.ordered).map((c) => `customer ${c.id}: charged ${c.charged}, ordered ${c.ordered}`),
    ...customers.filter((c) => c.balance + c.charged !== c.opening).map((c) => `customer ${c.id}: ${c.balance} left + ${c.charged} charged ≠ ${c.opening}`),
    ...(totalCharged !== totalOrdered ? [`in total: charged ${totalCharged}, ordered ${totalOrdered}`] : []),
  ];
  for (const id of opening.balances.keys()) if (!customers.some((c) => c.id === id)) moneyNotConserved.push(`customer ${id} is gone`);

  const inAll = (id: string) => state.orders.has(id) && state.charges.has(id) && state.reservations.has(id);
  const inAny = (id: string) => state.orders.has(id) || state.charges.has(id) || state.reservations.has(id);
  const everyId = new Set([...state.orders.keys(), ...state.charges.keys(), ...state.reservations.keys()]);
  const unlinked = [...everyId].filter((id) => !inAll(id)).map((id) => `${id}: ${where(state, id)}`);
  const committed = told.filter((o) => o.state === 'committed');
  return withOk({
    products,
    customers,
    committedOrders: state.orders.size,
    totalCharged,
    totalOrdered,
    stockNotConserved,
    moneyNotConserved,
    unlinked,
    mismatched,
    lostCommits: committed.filter((o) => !inAll(o.orderId)).map((o) => o.orderId),
    visibleAborts: told.filter((o) => o.state === 'aborted' && inAny(o.orderId)).map((o) => o.orderId),
    impossibleCommits: committed.filter((o) => o.kind !== 'purchase').map((o) => `${o.orderId} (${o.kind})`),
    prepared: state.prepared,
    failures: told.filter((o) => o.state === 'failed').length,
  });
}

function withOk(c: Omit<ShopCheck, 'ok'>): ShopCheck {
  const lists = [c.stockNotConserved, c.moneyNotConserved, c.unlinked, c.mismatched, c.lostCommits, c.visibleAborts, c.impossibleCommits, c.prepared];
  return { ...c, ok: lists.every((l) => l.length === 0) && c.failures === 0 };
}

function where(state: ShopState, id: string): string {
  const has = (yes: boolean, what: string) => `${yes ? '' : 'no '}${what}`;
  return [has(state.orders.has(id), 'order'), has(state.reservations.has(id), 'reservation'), has(state.charges.has(id), 'charge')].join(', ');
}

function sameLines(reserved: Map<number, number>, lines: Map<number, { quantity: number }>): boolean {
  return reserved.size === lines.size && [...lines].every(([product, l]) => reserved.get(product) === l.quantity);
}

function describe(lines: Map<number, number>): string {
  return [...lines].map(([product, quantity]) => `${quantity}×${product}`).join(' ') || 'nothing';
}

function sumOf(values: Iterable<number>): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum;
}
