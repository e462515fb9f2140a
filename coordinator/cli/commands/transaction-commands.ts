import { Command, InvalidArgumentError, Option } from 'commander';
import { LIST_STATES, MAX_LIST_LIMIT, type ListState } from '../../engine/transaction-listing';
import { EXIT } from '../exit-codes';
import { renderHistory, renderList, renderShow } from '../render-transactions';
import type { TargetOptions } from '../target';
import type { CommandDeps } from './command-deps';
import { runAdmin } from './run-admin';
import { addTargetOptions, txId } from './target-options';

// The read-only commands: list, show, history. Offline they open the log
// (taking its lock) and nothing else: no recovery, no participant.

function parseLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_LIST_LIMIT) throw new InvalidArgumentError(`must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  return n;
}

/** `twopc list [--state S] [--limit N]`. */
export function listCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('list'))
    .description('list transactions live in the coordinator or unfinished in its log, oldest first')
    .addOption(new Option('-s, --state <state>', 'only this state (in-doubt: past active, not completed; heuristic: with a heuristic hazard)').choices(LIST_STATES))
    .option('-n, --limit <n>', `at most n transactions (1-${MAX_LIST_LIMIT}, default 100)`, parseLimit)
    .action((opts: TargetOptions & { state?: ListState; limit?: number }) =>
      runAdmin(deps, opts, { needs: 'log' }, async ({ backend, output }) => {
        const list = await backend.list({ ...(opts.state ? { state: opts.state } : {}), ...(opts.limit ? { limit: opts.limit } : {}) });
        output.result(list, () => renderList(list, opts.state));
        return EXIT.ok;
      }),
    );
}

/** `twopc show ID`. */
export function showCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('show'))
    .description('show a transaction: state, decision, branches, abort reason and heuristic hazards')
    .argument('<id>', 'transaction id')
    .action((id: string, opts: TargetOptions) =>
      runAdmin(deps, opts, { needs: 'log' }, async ({ backend, output }) => {
        const status = await backend.show(txId(id));
        output.result(status, () => renderShow(status));
        return EXIT.ok;
      }, () => txId(id)),
    );
}

/** `twopc history ID`: the audit trail. */
export function historyCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('history'))
    .description('every logged event of a transaction with its time: begin, each enlist, the decision and who made it, completion, hazards')
    .argument('<id>', 'transaction id')
    .action((id: string, opts: TargetOptions) =>
      runAdmin(deps, opts, { needs: 'log' }, async ({ backend, output }) => {
        const history = await backend.history(txId(id));
        output.result(history, () => renderHistory(history));
        return EXIT.ok;
      }, () => txId(id)),
    );
}
