import { GOODS, PIANO, productById } from './catalog';

/** Why an order is in the plan: a normal purchase, or one made to fail on a constraint. */
export type OrderKind = 'purchase' | 'more-than-stock' | 'over-budget';

export interface OrderLine {
  product: number;
  quantity: number;
  /** The catalog's price, quoted to the orders service. */
  unitPrice: number;
}

export interface PlannedOrder {
  index: number;
  customer: number;
  lines: OrderLine[];
  total: number;
  kind: OrderKind;
}

export interface PlanOptions {
  orders: number;
  customers: number;
  /** What each of the goods opens with. */
  stock: number;
  /** Share of orders made to fail on each constraint (0.05: one in twenty on `stock >= 0`, one in twenty on `balance >= 0`). */
  failRate: number;
  random?: () => number;
}

const MAX_LINES = 3;
const MAX_QUANTITY = 3;

/**
 * The client's orders: random customers buying one to three of the goods,
 * one to three of each, so that popular goods sell out and some customers
 * run out of money as the run goes on. On top of that, spread evenly,
 * `failRate` of the orders ask for more of a product than was ever in stock
 * (refused by the inventory's `stock >= 0`), and as many buy the grand piano,
 * which costs more than any customer ever had (refused by the payments'
 * `balance >= 0`). Whatever else happens, those two kinds cannot commit.
 */
export function planOrders(o: PlanOptions): PlannedOrder[] {
  const random = o.random ?? Math.random;
  const pick = (n: number) => Math.floor(random() * n);
  // Evenly spread: one in 1/rate of each kind, the over-budget ones half a period after the others.
  const nth = (index: number, offset: number) => Math.floor((index + offset + 1) * o.failRate) > Math.floor((index + offset) * o.failRate);
  return Array.from({ length: o.orders }, (_, index) => {
    const customer = 1 + pick(o.customers);
    let kind: OrderKind = 'purchase';
    let lines: OrderLine[];
    if (nth(index, 0)) {
      kind = 'more-than-stock';
      lines = [line(GOODS[pick(GOODS.length)].id, o.stock + 1)];
    } else if (o.failRate > 0 && nth(index, Math.floor(0.5 / o.failRate))) {
      kind = 'over-budget';
      lines = [line(PIANO.id, 1)];
    } else {
      const goods = [...GOODS];
      const chosen = Array.from({ length: 1 + pick(MAX_LINES) }, () => goods.splice(pick(goods.length), 1)[0]);
      lines = chosen.map((p) => line(p.id, 1 + pick(MAX_QUANTITY))).sort((a, b) => a.product - b.product);
    }
    return { index, customer, lines, total: lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0), kind };
  });
}

function line(product: number, quantity: number): OrderLine {
  return { product, quantity, unitPrice: productById(product).price };
}
