/**
 * The shop example as one command:
 *
 *   npm run shop [-- --orders 200 --concurrency 8 --stock 75 --customers 20 --balance 600]
 *
 * Progress on stderr; each database's totals and the check on stdout, its
 * last line `check: OK: …` (exit code 0) or `check: FAILED: …` (1);
 * 130 / 143 when interrupted (everything torn down).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { MAX_BALANCE } from './catalog';
import { runShop, ShopInterruptedError } from './shop';

function positiveInt(max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`must be an integer from 1 to ${max}`);
    return n;
  };
}

// Exit once stdout has taken the report: pooled connections must not hold the process open.
const exit = (code: number) => process.stdout.write('', () => process.exit(code));

const program = new Command('shop')
  .description('run the shop example: orders (Prisma), inventory (Kysely) and payments (Drizzle), each a service on its own PostgreSQL cluster; N orders, each all or nothing; check stock and money')
  .addOption(new Option('-n, --orders <n>', 'orders to place').argParser(positiveInt(100_000)).default(200))
  .addOption(new Option('-c, --concurrency <n>', 'orders in flight at a time').argParser(positiveInt(64)).default(8))
  .addOption(new Option('--stock <n>', 'units of each of the goods in stock at the start').argParser(positiveInt(100_000)).default(75))
  .addOption(new Option('--customers <n>', 'customers').argParser(positiveInt(10_000)).default(20))
  .addOption(new Option('--balance <n>', "each customer's balance at the start").argParser(positiveInt(MAX_BALANCE)).default(600))
  .addHelpText('after', '\nProgress goes to stderr; the totals and the check to stdout (its last line: "check: OK" or "check: FAILED").')
  .action(async (opts: { orders: number; concurrency: number; stock: number; customers: number; balance: number }) => {
    try {
      const result = await runShop(opts);
      exit(result.ok ? 0 : 1);
    } catch (e) {
      if (!(e instanceof ShopInterruptedError)) throw e;
      exit(e.signal === 'SIGINT' ? 130 : 143);
    }
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`shop failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
