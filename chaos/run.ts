/**
 * `npm run chaos -- [options]`: the same command as `twopc chaos`
 * (chaos/chaos-command.ts), run on its own. See docs/CHAOS.md.
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
