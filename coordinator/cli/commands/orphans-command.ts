import { Command } from 'commander';
import { EXIT } from '../exit-codes';
import { withTicker } from '../progress';
import { renderOrphanRollback, renderOrphans } from '../render-operations';
import type { TargetOptions } from '../target';
import type { CommandDeps } from './command-deps';
import { runAdmin } from './run-admin';
import { addTargetOptions } from './target-options';

/** `twopc orphans [--rollback]`. */
export function orphansCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('orphans'))
    .description('list prepared branches of our GID prefix on the configured databases that no running transaction owns')
    .option('--rollback', 'end them through the decision register: undecided ones are decided abort and rolled back; a branch of a transaction decided commit is committed')
    .addHelpText('after', '\nExit code 7 when a database could not be listed; with --rollback, 8 when an orphan was left (phase 2 still retrying, or a hazard).')
    .action((opts: TargetOptions & { rollback?: boolean }) =>
      runAdmin(deps, opts, { needs: 'participants' }, async ({ backend, output, progress }) => {
        if (!opts.rollback) {
          const scan = await withTicker(progress, (s) => `listing prepared transactions (${s} s)`, backend.orphans());
          output.result(scan, () => renderOrphans(scan));
          return scan.unreachable.length > 0 ? EXIT.unavailable : EXIT.ok;
        }
        const results = await withTicker(progress, (s) => `ending orphans (${s} s)`, backend.rollbackOrphans());
        output.result({ results }, () => renderOrphanRollback(results));
        return results.some((r) => r.outcome === 'left') ? EXIT.incomplete : EXIT.ok;
      }),
    );
}
