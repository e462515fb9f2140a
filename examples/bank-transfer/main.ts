/**
 * The demo as a script, without the `twopc` CLI:
 *
 *   node --import tsx examples/bank-transfer/main.ts [--transfers 200] [--concurrency 8]
 *
 * Same options, output and exit codes as `twopc demo`.
 */
import { Command } from 'commander';
import { registerDemoCommand } from '../../coordinator/cli/demo-command';

const program = new Command('bank-transfer-demo');
registerDemoCommand(program);
program.parseAsync(['demo', ...process.argv.slice(2)], { from: 'user' }).catch((e: unknown) => {
  process.stderr.write(`bank-transfer demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
