import { Command, InvalidArgumentError } from 'commander';
import { EXIT } from '../exit-codes';
import { withTicker } from '../progress';
import { renderCompact, renderVerify } from '../render-log';
import type { TargetOptions } from '../target';
import type { CommandDeps } from './command-deps';
import { runAdmin } from './run-admin';
import { addTargetOptions } from './target-options';

function parseRetention(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be an integer number of milliseconds >= 0');
  return Number(value);
}

/** `twopc log verify` and `twopc log compact`. */
export function logCommand(deps: CommandDeps): Command {
  const log = new Command('log').description('the decision log: verify, compact');

  log.addCommand(
    addTargetOptions(new Command('verify'))
      .description('check every record of the file decision log (read-only; offline it takes no lock, so it also works beside a running coordinator)')
      .addHelpText('after', '\nExit code 6 when damage is found that a start would refuse (each damaged range is printed as file:offset); a torn final record alone is not damage (a start cuts it off).')
      .action((opts: TargetOptions) =>
        runAdmin(deps, opts, { needs: 'files' }, async ({ backend, output, progress }) => {
          const report = await withTicker(progress, (s) => `verifying ${backend.where} (${s} s)`, backend.verifyLog());
          output.result(report, () => renderVerify(report));
          return report.opens ? EXIT.ok : EXIT.logDamaged;
        }),
      ),
  );

  log.addCommand(
    addTargetOptions(new Command('compact'))
      .description('forget completed transactions past retention and reclaim log space')
      .option('--retention <ms>', 'offline: forget completed transactions older than this (default: 600000, as the coordinator)', parseRetention)
      .action((opts: TargetOptions & { retention?: number }) =>
        runAdmin(deps, opts, { needs: 'log', retentionMs: opts.retention }, async ({ backend, output, progress }) => {
          const report = await withTicker(progress, (s) => `compacting ${backend.where} (${s} s)`, backend.compactLog());
          output.result(report, () => renderCompact(report));
          return EXIT.ok;
        }),
      ),
  );
  return log;
}
