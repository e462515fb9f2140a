import { Command } from 'commander';
import type { RecoveryReport } from '../../engine/recovery';
import { EXIT } from '../exit-codes';
import { withTicker } from '../progress';
import { recoveryHandled, renderRecovery } from '../render-operations';
import type { TargetOptions } from '../target';
import type { CommandDeps } from './command-deps';
import { runAdmin } from './run-admin';
import { addTargetOptions, parseWait, WAIT_HELP } from './target-options';

/**
 * `twopc recover`: one recovery pass now. Offline it is the pass a start
 * would run (on the log and the configured databases), with live progress;
 * online the coordinator runs it and answers when it is done.
 */
export function recoverCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('recover'))
    .description('one recovery pass now: resume phase 2 of decided transactions, decide abort for undecided ones')
    .option('-w, --wait <ms>', WAIT_HELP, parseWait)
    .addHelpText('after', '\nExit code 8 when work is left: phase 2 still retrying, or transactions left for an operator (heuristic hazards).')
    .action((opts: TargetOptions & { wait?: number }) =>
      runAdmin(deps, opts, { needs: 'participants', waitMs: opts.wait }, async ({ backend, output, progress }) => {
        const started = Date.now();
        let report: RecoveryReport;
        if (backend.mode === 'offline') {
          progress.update(`recovery: reading ${backend.where}`);
          report = await backend.recover({
            ...(opts.wait === undefined ? {} : { waitMs: opts.wait }),
            onProgress: (r) => progress.update(`recovery: ${recoveryHandled(r)}/${r.unfinished} decided, ${r.completed} finished`),
          });
        } else {
          report = await withTicker(progress, (s) => `recovery pass running on ${backend.where} (${s} s)`, backend.recover(opts.wait === undefined ? {} : { waitMs: opts.wait }));
        }
        const seconds = (Date.now() - started) / 1000;
        progress.done(`recovery: ${recoveryHandled(report)}/${report.unfinished} decided, ${report.completed} finished in ${seconds.toFixed(1)} s`);
        output.result(report, () => renderRecovery(report, seconds));
        return report.pending > 0 || report.leftForLater > 0 ? EXIT.incomplete : EXIT.ok;
      }),
    );
}
