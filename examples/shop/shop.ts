import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { waitForNoPrepared } from '../../coordinator/demo/bank-check';
import { LiveLine, type ProgressStream } from '../../coordinator/demo/progress';
import { Reaper } from '../../coordinator/demo/reaper';
import { Teardown } from '../../coordinator/demo/teardown';
import { generatePrismaClient } from '../../harness/prisma-generate';
import { CATALOG, initialStock, MAX_BALANCE } from './catalog';
import { checkShop, type ShopCheck } from './check';
import { ShopClient, SERVICES, type OrderOutcome } from './client';
import { planOrders, type PlannedOrder } from './plan';
import { count, newCounts, progressLine, shopReport, type OrderCounts } from './report';
import { readShop } from './state';
import { startShop } from './system';

const int = (field: string, min: number, max: number) =>
  z.number({ error: `${field} must be a number` }).int(`${field} must be an integer`).min(min, `${field} must be >= ${min}`).max(max, `${field} must be <= ${max}`);
const stream = (field: string) => z.custom<ProgressStream>((s) => typeof (s as ProgressStream | undefined)?.write === 'function', `${field} must be a writable stream`);

const optionsSchema = z
  .object({
    orders: int('orders', 1, 100_000).default(200),
    concurrency: int('concurrency', 1, 64).default(8),
    /** What each of the goods opens with. */
    stock: int('stock', 1, 100_000).default(75),
    customers: int('customers', 1, 10_000).default(20),
    /** What each customer opens with (below the piano's price, which nobody can afford). */
    balance: int('balance', 1, MAX_BALANCE).default(600),
    /** Share of orders made to fail on each constraint. */
    failRate: z.number({ error: 'failRate must be a number' }).min(0, 'failRate must be >= 0').max(0.25, 'failRate must be <= 0.25').default(0.05),
    /** Stop everything and throw ShopInterruptedError on SIGINT / SIGTERM (a caller that handles signals itself turns it off). */
    handleSignals: z.boolean().default(true),
    stdout: stream('stdout').optional(),
    stderr: stream('stderr').optional(),
  })
  .strict();

/** Options of {@link runShop}: how many orders, how many at a time, the shop's stock and customers, how many fail on purpose, where output goes. */
export type ShopOptions = z.input<typeof optionsSchema>;

export interface ShopResult {
  ok: boolean;
  counts: OrderCounts;
  check: ShopCheck;
}

/** The run was stopped by a signal (Ctrl-C); everything was torn down. */
export class ShopInterruptedError extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'ShopInterruptedError';
  }
}

const ORDERS_SCHEMA = path.join(__dirname, 'services', 'orders.prisma');

/**
 * The shop, from nothing: generates the orders service's Prisma client
 * (offline, once), starts three throwaway PostgreSQL clusters (orders,
 * inventory, payments), the coordinator (`twopc serve`) and the three
 * services, each its own process; places the orders through them (some fail
 * on `stock >= 0` or `balance >= 0` and abort everywhere); prints each
 * database's totals and the check on stdout (progress on stderr); and tears
 * everything down, also on errors and Ctrl-C.
 *
 * @example
 * const result = await runShop({ orders: 200, concurrency: 8 });
 * process.exitCode = result.ok ? 0 : 1;
 */
export async function runShop(input: ShopOptions = {}): Promise<ShopResult> {
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) throw new Error(`runShop: ${parsed.error.issues[0].message}`);
  const o = parsed.data;
  const stdout = o.stdout ?? process.stdout;
  const progress = new LiveLine(o.stderr ?? process.stderr);

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-shop-'));
  const reaper = Reaper.start(path.join(root, 'reaper.list'));
  reaper.add('dir', root);
  const teardown = new Teardown((line) => progress.note(line));
  teardown.add('remove the temp dir', () => fs.rmSync(root, { recursive: true, force: true }));

  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) return;
    progress.note(`${signal}: stopping the services, the coordinator and the clusters…`);
    stop.abort(new ShopInterruptedError(signal));
  };
  // Kept until the end: Ctrl-C may arrive twice (from the terminal, and relayed by tsx or npm).
  if (o.handleSignals) for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, onSignal);
  const checkStop = () => {
    if (stop.signal.aborted) throw stop.signal.reason;
  };

  let logTails = () => '';
  try {
    if (generatePrismaClient(ORDERS_SCHEMA)) progress.note('generated the orders service\'s Prisma client (examples/shop/services/generated, kept for later runs)');
    checkStop();
    const opening = {
      stock: new Map(CATALOG.map((p) => [p.id, initialStock(p, o.stock)])),
      balances: new Map(Array.from({ length: o.customers }, (_, i) => [i + 1, o.balance])),
    };
    const system = await startShop({
      root,
      env: { orders: {}, inventory: { STOCK: String(o.stock) }, payments: { CUSTOMERS: String(o.customers), BALANCE: String(o.balance) } },
      poolSize: o.concurrency + 4,
      teardown,
      reaper,
      note: (l) => progress.note(l),
    });
    logTails = system.logTails;
    checkStop();
    const client = new ShopClient({ coordinatorUrl: system.coordinator.url, apiToken: system.coordinator.apiToken, services: system.serviceUrls, connections: o.concurrency });
    teardown.add('close the client', () => client.close());

    const plan = planOrders({ orders: o.orders, customers: o.customers, stock: o.stock, failRate: o.failRate });
    const madeToFail = plan.filter((p) => p.kind !== 'purchase').length;
    progress.note(`placing ${o.orders} orders, ${o.concurrency} at a time (${madeToFail} made to fail: more than the stock, or a grand piano nobody can afford)…`);
    const { counts, outcomes } = await placeOrders(client, plan, newCounts(plan.length, madeToFail, o.concurrency), stop.signal, (c) => progress.update(progressLine(c)));
    progress.done(progressLine(counts));
    checkStop();

    progress.note('checking the three databases…');
    await waitForNoPrepared(SERVICES.map((s) => system.databases[s]), 15_000);
    const check = checkShop(await readShop(system.databases), opening, outcomes);
    stdout.write(shopReport(counts, check));
    if (!check.ok) progress.note(`what the processes said last:\n${logTails()}`);
    return { ok: check.ok, counts, check };
  } catch (e) {
    // Ctrl-C reaches the whole process group: a service that it stopped while starting failed because of it.
    if (stop.signal.aborted) throw stop.signal.reason;
    // The caller reports the error itself; what the processes printed last is only known here.
    const tails = logTails();
    if (tails) progress.note(`what the processes said last:\n${tails}`);
    throw e;
  } finally {
    if (!stop.signal.aborted) progress.note('stopping the services, the coordinator and the clusters…');
    await teardown.run();
    reaper.disarm();
    if (o.handleSignals) for (const s of ['SIGINT', 'SIGTERM'] as const) process.removeListener(s, onSignal);
  }
}

/** `concurrency` workers, each placing the next planned order until none are left (or the run is stopped). */
async function placeOrders(
  client: ShopClient,
  plan: PlannedOrder[],
  counts: OrderCounts,
  signal: AbortSignal,
  onProgress: (counts: OrderCounts) => void,
): Promise<{ counts: OrderCounts; outcomes: OrderOutcome[] }> {
  const started = Date.now();
  const outcomes: OrderOutcome[] = [];
  let next = 0;
  const worker = async () => {
    while (!signal.aborted && next < plan.length) {
      const outcome = await client.place(plan[next++]);
      outcomes.push(outcome);
      count(counts, outcome);
      counts.elapsedMs = Date.now() - started;
      onProgress(counts);
    }
  };
  await Promise.all(Array.from({ length: counts.concurrency }, worker));
  counts.elapsedMs = Date.now() - started;
  return { counts, outcomes };
}
