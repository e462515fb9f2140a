import { Command } from 'commander';
import { EXIT } from '../exit-codes';
import { renderInstances } from '../render-instances';
import type { TargetOptions } from '../target';
import type { CommandDeps } from './command-deps';
import { runAdmin } from './run-admin';
import { addTargetOptions } from './target-options';

/** `twopc instances`: the coordinator instances sharing a PostgreSQL or Redis decision log. */
export function instancesCommand(deps: CommandDeps): Command {
  return addTargetOptions(new Command('instances'))
    .description('list the coordinator instances sharing the decision log: their leases (fencing tokens), which are live, expired or taken over, and by whom')
    .addHelpText('after', '\nOn a file log there is one instance and no lease. Exit code 8 when a lease expired and no instance has taken it over yet.')
    .action((opts: TargetOptions) =>
      runAdmin(deps, opts, { needs: 'files' }, async ({ backend, output }) => {
        const report = await backend.instances();
        output.result(report, () => renderInstances(report));
        return report.instances.some((i) => i.state === 'expired') ? EXIT.incomplete : EXIT.ok;
      }),
    );
}
