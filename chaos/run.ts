/**
 * `npm run chaos -- [options]`: the fault-injection run
 * (chaos/chaos-command.ts). See docs/CHAOS.md.
 */
import { CommanderError } from 'commander';
import { chaosCommand } from './chaos-command';

chaosCommand()
  .name('npm run chaos --')
  .exitOverride()
  .parseAsync(process.argv)
  .catch((e) => {
    if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
    process.stderr.write(`chaos: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
