import { Command, InvalidArgumentError, Option } from 'commander';
import { EXIT } from './exit-codes';

/** How `twopc demo` ends the process (main's exit, or a test's). */
export interface DemoCommandDeps {
  exit?: (code: number) => void;
}

function positiveInt(max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`must be an integer from 1 to ${max}`);
    return n;
  };
}

// Exit once stdout has taken the report: pooled connections must not hold the process open.
const exitAfterOutput = (code: number) => process.stdout.write('', () => process.exit(code));

/**
 * Adds `twopc demo` (SPEC §8): the bank-transfer example end to end with no
 * setup (see examples/bank-transfer/README.md). Exit code 0 when the check
 * holds (money conserved, every transfer atomic, nothing left prepared),
 * 1 when it does not, 130/143 when interrupted.
 *
 * @example
 * const program = new Command('twopc');
 * registerDemoCommand(program);
 * await program.parseAsync(['demo', '--transfers', '50'], { from: 'user' });
 */
export function registerDemoCommand(program: Command, deps: DemoCommandDeps = {}): Command {
  const exit = deps.exit ?? exitAfterOutput;
  return program
    .command('demo')
    .description('run the bank-transfer example: two PostgreSQL clusters, the coordinator and two account services as processes; N transfers; check that money is conserved')
    .addOption(new Option('-n, --transfers <n>', 'transfers to make').argParser(positiveInt(1_000_000)).default(200))
    .addOption(new Option('-c, --concurrency <n>', 'transfers in flight at a time').argParser(positiveInt(64)).default(8))
    .addHelpText('after', '\nProgress goes to stderr; the final balances and the check to stdout (its last line: "check: OK" or "check: FAILED").')
    .action(async (opts: { transfers: number; concurrency: number }) => {
      // Loaded here: the example (clusters, processes) is only needed when the demo runs.
      const { DemoInterruptedError, runDemo } = await import('../demo/demo');
      try {
        const result = await runDemo({ transfers: opts.transfers, concurrency: opts.concurrency });
        exit(result.ok ? EXIT.ok : EXIT.failure);
      } catch (e) {
        if (!(e instanceof DemoInterruptedError)) throw e;
        exit(e.signal === 'SIGINT' ? 130 : 143);
      }
    });
}
