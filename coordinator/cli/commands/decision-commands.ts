import { Command } from 'commander';
import type { Outcome } from '../../engine/ports/types';
import { isTwopcError } from '../../engine/ports/protocol';
import { CliError, EXIT } from '../exit-codes';
import { confirm } from '../confirm';
import { withTicker } from '../progress';
import { renderResolve, renderRetry } from '../render-operations';
import type { TargetOptions } from '../target';
import type { CommandDeps } from './command-deps';
import { runAdmin } from './run-admin';
import { addTargetOptions, parseWait, txId, WAIT_HELP } from './target-options';

/** `twopc retry ID`: phase 2 now instead of after its backoff. */
export function retryCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('retry'))
    .description("run phase 2 of a decided, unfinished transaction now (instead of after its backoff) and wait for it")
    .argument('<id>', 'transaction id')
    .option('-w, --wait <ms>', WAIT_HELP, parseWait)
    .addHelpText('after', '\nExit code 8 when phase 2 did not finish within the wait (or hit a heuristic hazard); 5 when the transaction has no decision yet.')
    .action((id: string, opts: TargetOptions & { wait?: number }) =>
      runAdmin(
        deps,
        opts,
        { needs: 'participants', waitMs: opts.wait },
        async ({ backend, output, progress }) => {
          const result = await withTicker(progress, (s) => `retrying phase 2 of ${id} (${s} s)`, backend.retry(id, opts.wait));
          output.result(result, () => renderRetry(result));
          if (!result.retried) return result.completed ? EXIT.ok : EXIT.conflict;
          return result.completed ? EXIT.ok : EXIT.incomplete;
        },
        () => txId(id),
      ),
    );
}

/**
 * `twopc resolve ID --commit|--abort`: an operator's decision, through the
 * same register as every other decision, so it can never contradict one
 * that is recorded (exit 5). Asks for confirmation on a terminal.
 */
export function resolveCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('resolve'))
    .description('record an operator decision for an in-doubt transaction and apply it to every branch; never contradicts a recorded decision')
    .argument('<id>', 'transaction id')
    .option('--commit', 'decide commit')
    .option('--abort', 'decide abort')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .addHelpText('after', '\nExit code 5 when another decision is recorded (or confirmation is refused), 8 when phase 2 did not finish yet.')
    .action((id: string, opts: TargetOptions & { commit?: boolean; abort?: boolean; yes?: boolean }) => {
      const outcome = (): Outcome => {
        if (opts.commit === opts.abort) throw new CliError(EXIT.usage, 'give exactly one of --commit and --abort');
        return opts.commit ? 'commit' : 'abort';
      };
      const yes = opts.yes === true;
      return runAdmin(
        deps,
        opts,
        { needs: 'participants' },
        async ({ backend, output, progress }) => {
          const decision = outcome();
          if (!yes) {
            const status = await backend.show(id).catch((e: unknown) => {
              if (isTwopcError(e, 'not-found')) return undefined;
              throw e;
            });
            const what = status
              ? `it is ${status.state}, decision ${status.decision ?? 'none'}, ${status.branches.length} branch(es)`
              : 'it is not in the log; its prepared branches found on the participants will be decided';
            await confirm(`Record the operator decision ${decision.toUpperCase()} for transaction ${id} (${what})? This is final.`, { yes, streams: deps.terminal });
          }
          const result = await withTicker(progress, (s) => `resolving ${id}: ${decision} (${s} s)`, backend.resolve(id, decision));
          output.result(result, () => renderResolve(result));
          return result.completed ? EXIT.ok : EXIT.incomplete;
        },
        () => {
          txId(id);
          outcome();
          // Refused before anything is opened: nobody could answer the question.
          if (!yes && !deps.terminal.input.isTTY) {
            throw new CliError(EXIT.conflict, 'refusing to record a decision without confirmation: stdin is not a terminal; pass --yes to confirm in a script');
          }
        },
      );
    });
}
