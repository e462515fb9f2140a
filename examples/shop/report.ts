import { CATALOG } from './catalog';
import type { ShopCheck } from './check';
import type { OrderOutcome } from './client';

/** What the run did, as counted by the client. */
export interface OrderCounts {
  planned: number;
  done: number;
  committed: number;
  aborted: number;
  outOfStock: number;
  insufficientFunds: number;
  /** Orders made to fail on purpose (more than the stock, the piano), and how many of those aborted. */
  madeToFail: number;
  madeToFailAborted: number;
  failed: number;
  firstFailure?: string;
  elapsedMs: number;
  concurrency: number;
}

export function newCounts(planned: number, madeToFail: number, concurrency: number): OrderCounts {
  return { planned, done: 0, committed: 0, aborted: 0, outOfStock: 0, insufficientFunds: 0, madeToFail, madeToFailAborted: 0, failed: 0, elapsedMs: 0, concurrency };
}

export function count(c: OrderCounts, o: OrderOutcome): void {
  c.done += 1;
  if (o.state === 'committed') c.committed += 1;
  else if (o.state === 'aborted') {
    c.aborted += 1;
    if (o.code === 'out-of-stock') c.outOfStock += 1;
    if (o.code === 'insufficient-funds') c.insufficientFunds += 1;
    if (o.kind !== 'purchase') c.madeToFailAborted += 1;
  } else {
    c.failed += 1;
    c.firstFailure ??= o.error;
  }
}

/** The one-line progress of the run. */
export function progressLine(c: OrderCounts): string {
  const rate = c.elapsedMs > 0 ? (c.done * 1000) / c.elapsedMs : 0;
  return `orders ${c.done}/${c.planned}  committed ${c.committed}  aborted ${c.aborted} (out of stock ${c.outOfStock}, insufficient funds ${c.insufficientFunds})  failed ${c.failed}  (${rate.toFixed(1)}/s)`;
}

// Beyond this many customers only the totals are printed.
const MAX_CUSTOMER_ROWS = 20;

/** The final report: what happened, each database's totals, and the check. Its last line starts with `check: OK` or `check: FAILED`. */
export function shopReport(c: OrderCounts, check: ShopCheck): string {
  const seconds = c.elapsedMs / 1000;
  const lines = [
    `${c.done} orders in ${seconds.toFixed(1)} s (${(c.done / Math.max(seconds, 0.001)).toFixed(1)}/s), ${c.concurrency} at a time:`,
    `  committed  ${c.committed}`,
    `  aborted    ${c.aborted}: ${c.outOfStock} out of stock, ${c.insufficientFunds} insufficient funds, ${c.aborted - c.outOfStock - c.insufficientFunds} other (${c.madeToFailAborted} of the ${c.madeToFail} made to fail)`,
    `  failed     ${c.failed}${c.firstFailure ? ` (first: ${c.firstFailure})` : ''}`,
    '',
    'inventory (Kysely):',
    ...table(['product', 'price', 'initial', 'left', 'sold'], check.products.map((p) => [`${p.id} ${p.name}`, CATALOG.find((x) => x.id === p.id)?.price ?? '?', p.initial, p.stock, p.sold])),
    '',
    'payments (Drizzle):',
    ...table(['customer', 'opening', 'balance', 'charged', 'ordered'], customerRows(check)),
    '',
    `orders (Prisma): ${check.committedOrders} orders, ${check.totalOrdered} in total`,
    '',
    'check:',
    `${mark(check.stockNotConserved)} stock + sold = initial for each of ${check.products.length} products${sample(check.stockNotConserved)}`,
    `${mark(check.moneyNotConserved)} charges = order totals per customer and in total (${check.totalCharged} = ${check.totalOrdered}), balance + charges = opening balance${sample(check.moneyNotConserved)}`,
    `${mark(check.unlinked)} every order has its reservation and its charge, and each of those its order: ${check.committedOrders - check.unlinked.length} in all three, ${check.unlinked.length} not${sample(check.unlinked)}`,
    `${mark(check.mismatched)} each charge is its order's total, each reservation its order's lines${sample(check.mismatched)}`,
    `${mark(check.lostCommits)} every order the client was told committed is in all three databases: ${c.committed}${sample(check.lostCommits)}`,
    `${mark(check.visibleAborts)} no order the client was told aborted is in any: ${c.aborted}${sample(check.visibleAborts)}`,
    `${mark(check.impossibleCommits)} no order made to fail committed: ${c.madeToFail} made to fail${sample(check.impossibleCommits)}`,
    `${mark(check.prepared)} no prepared transaction left: ${check.prepared.length} left${sample(check.prepared)}`,
    `${check.failures === 0 ? '  [ok]  ' : '  [FAIL]'} no unexpected failures: ${check.failures}`,
    '',
    verdict(check),
  ];
  return `${lines.join('\n')}\n`;
}

function verdict(check: ShopCheck): string {
  if (check.ok) return 'check: OK: stock and money conserved, every order in all three databases or in none, nothing left prepared';
  const broken = [
    check.stockNotConserved.length > 0 && 'stock not conserved',
    check.moneyNotConserved.length > 0 && 'money not conserved',
    check.unlinked.length + check.mismatched.length + check.lostCommits.length + check.visibleAborts.length > 0 && 'an order is not atomic',
    check.impossibleCommits.length > 0 && 'an order beyond a constraint committed',
    check.prepared.length > 0 && 'prepared transactions left',
    check.failures > 0 && 'unexpected failures',
  ];
  return `check: FAILED: ${broken.filter(Boolean).join(', ')}`;
}

function customerRows(check: ShopCheck): Array<Array<string | number>> {
  const rows: Array<Array<string | number>> =
    check.customers.length <= MAX_CUSTOMER_ROWS ? check.customers.map((c) => [c.id, c.opening, c.balance, c.charged, c.ordered]) : [[`(${check.customers.length} customers)`, '', '', '', '']];
  const total = (pick: (c: ShopCheck['customers'][number]) => number) => check.customers.reduce((sum, c) => sum + pick(c), 0);
  return [...rows, ['total', total((c) => c.opening), total((c) => c.balance), total((c) => c.charged), total((c) => c.ordered)]];
}

function table(header: string[], rows: Array<Array<string | number>>): string[] {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, col) => Math.max(...all.map((r) => r[col].length)));
  return all.map((r) => `  ${r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col] + 2))).join('')}`);
}

const mark = (broken: string[]) => (broken.length === 0 ? '  [ok]  ' : '  [FAIL]');

function sample(items: string[]): string {
  return items.length === 0 ? '' : ` (e.g. ${items.slice(0, 3).join('; ')})`;
}
