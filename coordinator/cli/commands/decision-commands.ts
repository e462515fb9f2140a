import { Command } from 'commander';
import { MAX_ACTION_NOTE_LENGTH, OUTCOMES, type Outcome } from '../../engine/ports/types';
import { isTwopcError } from '../../engine/ports/protocol';
import { CliError, EXIT } from '../exit-codes';
import { confirm } from '../confirm';
import { withTicker } from '../progress';
import { renderResolve, renderRetry, renderSettle } from '../render-operations';
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

/**
 * `twopc settle ID --note TEXT`: ends an unfinished transaction with a
 * heuristic hazard once an operator reconciled it by hand. The note (how) is
 * recorded in its history. Refused (exit 5) when it has no hazard, a hazard
 * branch is still prepared, a prepared branch is not in its commit decision,
 * or `--outcome` is not its decision or what its branch proves; exit 7 when a
 * branch cannot be finished or read, or a database listed, now. Asks for
 * confirmation on a terminal, as resolve does.
 */
export function settleCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('settle'))
    .description('end an unfinished transaction with a heuristic hazard that you reconciled by hand: finishes its other branches, completes it, records your note')
    .argument('<id>', 'transaction id')
    .option('--note <text>', `how the hazard was reconciled (required, at most ${MAX_ACTION_NOTE_LENGTH} characters; recorded in its history)`)
    .option('--outcome <outcome>', 'commit or abort: required for an undecided transaction (a one-phase commit: how you found or made its branch); for a decided one it must be the decision')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .addHelpText('after', '\nExit code 5 when it has no hazard, is completed, a hazard branch is still prepared (twopc retry), a prepared branch is not in its commit decision, or --outcome is not its decision or what its branch proves; 7 when a branch cannot be finished or read, or a database listed, now.')
    .action((id: string, opts: TargetOptions & { note?: string; outcome?: string; yes?: boolean }) => {
      const note = (): string => {
        const text = opts.note?.trim() ?? '';
        if (text.length === 0) throw new CliError(EXIT.usage, '--note is required: say how the hazard was reconciled (it is recorded in the transaction\'s history)');
        if (text.length > MAX_ACTION_NOTE_LENGTH) throw new CliError(EXIT.usage, `--note must be at most ${MAX_ACTION_NOTE_LENGTH} characters`);
        return text;
      };
      const outcome = (): Outcome | undefined => {
        if (opts.outcome === undefined) return undefined;
        if (!(OUTCOMES as readonly string[]).includes(opts.outcome)) throw new CliError(EXIT.usage, `--outcome must be one of ${OUTCOMES.join(', ')}`);
        return opts.outcome as Outcome;
      };
      const yes = opts.yes === true;
      return runAdmin(
        deps,
        opts,
        { needs: 'participants' },
        async ({ backend, output, progress }) => {
          if (!yes) {
            const status = await backend.show(id);
            const what = `it is ${status.state}, decision ${status.decision ?? 'none'}, ${status.hazards.length} hazard(s)`;
            await confirm(`Settle transaction ${id} (${what}) as reconciled by hand? It is completed and no longer listed. This is final.`, { yes, streams: deps.terminal });
          }
          const result = await withTicker(progress, (s) => `settling ${id} (${s} s)`, backend.settle(id, note(), outcome()));
          output.result(result, () => renderSettle(result));
          return EXIT.ok;
        },
        () => {
          txId(id);
          note();
          outcome();
          if (!yes && !deps.terminal.input.isTTY) {
            throw new CliError(EXIT.conflict, 'refusing to settle without confirmation: stdin is not a terminal; pass --yes to confirm in a script');
          }
        },
      );
    });
}
