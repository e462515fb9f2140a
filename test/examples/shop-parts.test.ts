import { GOODS, MAX_BALANCE, PIANO } from '../../examples/shop/catalog';
import { checkShop, type Opening } from '../../examples/shop/check';
import type { OrderOutcome } from '../../examples/shop/client';
import { planOrders } from '../../examples/shop/plan';
import type { ShopState, StoredOrder } from '../../examples/shop/state';

/** The shop example's plan and its check, without processes: the check must catch each way an order can break. */

describe('shop example: the plan', () => {
  it('makes one in twenty orders ask for more than the stock and one in twenty buy the piano; the rest cannot fail on their own', () => {
    const plan = planOrders({ orders: 200, customers: 20, stock: 75, failRate: 0.05 });
    const moreThanStock = plan.filter((o) => o.kind === 'more-than-stock');
    const overBudget = plan.filter((o) => o.kind === 'over-budget');
    expect([moreThanStock.length, overBudget.length]).toEqual([10, 10]);
    for (const o of moreThanStock) expect(o.lines.some((l) => l.quantity > 75)).toBe(true);
    for (const o of overBudget) expect(o.total).toBeGreaterThan(MAX_BALANCE);
    for (const o of plan.filter((x) => x.kind === 'purchase')) {
      expect(o.lines.every((l) => l.product !== PIANO.id && l.quantity <= 3)).toBe(true);
      expect(o.total).toBe(o.lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0));
      expect(o.customer).toBeGreaterThanOrEqual(1);
      expect(o.customer).toBeLessThanOrEqual(20);
    }
    expect(planOrders({ orders: 40, customers: 3, stock: 10, failRate: 0 }).every((o) => o.kind === 'purchase')).toBe(true);
  });

  it('names each product at most once per order, in id order (the inventory locks rows in that order)', () => {
    for (const o of planOrders({ orders: 300, customers: 5, stock: 10, failRate: 0.1 })) {
      const ids = o.lines.map((l) => l.product);
      expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
    }
  });
});

describe('shop example: the check', () => {
  const [A, B, C] = ['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b', '00000000-0000-4000-8000-00000000000c'];
  const mug = GOODS[0];
  const opening: Opening = { stock: new Map([[mug.id, 10]]), balances: new Map([[1, 100], [2, 100]]) };

  /** Order A (customer 1, 2 mugs) committed everywhere; order B aborted, found nowhere. */
  function consistent(): ShopState {
    const order: StoredOrder = { customer: 1, total: 2 * mug.price, lines: new Map([[mug.id, { quantity: 2, unitPrice: mug.price }]]) };
    return {
      orders: new Map([[A, order]]),
      products: [{ id: mug.id, name: mug.name, stock: 8 }],
      reservations: new Map([[A, new Map([[mug.id, 2]])]]),
      customers: [
        { id: 1, balance: 100 - 2 * mug.price },
        { id: 2, balance: 100 },
      ],
      charges: new Map([[A, { customer: 1, amount: 2 * mug.price }]]),
      prepared: [],
    };
  }
  const told: OrderOutcome[] = [
    { index: 0, kind: 'purchase', orderId: A, state: 'committed', txId: 't-a', total: 2 * mug.price },
    { index: 1, kind: 'more-than-stock', orderId: B, state: 'aborted', txId: 't-b', code: 'out-of-stock', reason: 'fewer left' },
  ];

  it('holds when stock and money add up and every order is in all three databases or in none', () => {
    const check = checkShop(consistent(), opening, told);
    expect(check).toMatchObject({ ok: true, committedOrders: 1, totalCharged: 24, totalOrdered: 24, stockNotConserved: [], moneyNotConserved: [], unlinked: [], mismatched: [] });
    expect(check.products).toEqual([{ id: mug.id, name: mug.name, initial: 10, stock: 8, sold: 2 }]);
  });

  it('fails on an order missing its charge: unlinked, money and the commit the client was told of', () => {
    const state = consistent();
    state.charges.delete(A);
    state.customers[0].balance = 100;
    const check = checkShop(state, opening, told);
    expect(check).toMatchObject({ ok: false, unlinked: [`${A}: order, reservation, no charge`], lostCommits: [A], moneyNotConserved: ['customer 1: charged 0, ordered 24', 'in total: charged 0, ordered 24'] });
  });

  it('fails on a reservation without its order (an aborted order half applied), and on stock that does not add up', () => {
    const state = consistent();
    state.reservations.set(B, new Map([[mug.id, 11]]));
    state.products[0].stock = 0;
    const check = checkShop(state, opening, told);
    expect(check).toMatchObject({ ok: false, unlinked: [`${B}: no order, reservation, no charge`], visibleAborts: [B], stockNotConserved: ['product 1: 0 left + 2 sold ≠ 10'] });
  });

  it("fails on a charge that is not the order's total and a reservation that is not its lines", () => {
    const state = consistent();
    state.charges.set(A, { customer: 2, amount: 10 });
    state.reservations.set(A, new Map([[mug.id, 1]]));
    const check = checkShop(state, opening, told);
    expect(check.ok).toBe(false);
    expect(check.mismatched).toEqual([`order ${A}: 24 for customer 1, charged 10 to customer 2`, `order ${A}: reserved 1×1, ordered 2×1`]);
  });

  it('fails on a prepared transaction left, an order made to fail that committed, or an unexpected failure', () => {
    const prepared = { ...consistent(), prepared: ['inventory:twopc_x_2'] };
    expect(checkShop(prepared, opening, told)).toMatchObject({ ok: false, prepared: ['inventory:twopc_x_2'] });
    const impossible = checkShop(consistent(), opening, [{ ...told[0], kind: 'over-budget' }, told[1]]);
    expect(impossible).toMatchObject({ ok: false, impossibleCommits: [`${A} (over-budget)`] });
    const failed = checkShop(consistent(), opening, [...told, { index: 2, kind: 'purchase', orderId: C, state: 'failed', error: 'socket hang up' }]);
    expect(failed).toMatchObject({ ok: false, failures: 1 });
  });
});
