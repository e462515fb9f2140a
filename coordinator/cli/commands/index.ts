import type { Command } from 'commander';
import type { CommandDeps } from './command-deps';
import { resolveCommand, retryCommand, settleCommand } from './decision-commands';
import { instancesCommand } from './instances-command';
import { logCommand } from './log-commands';
import { orphansCommand } from './orphans-command';
import { recoverCommand } from './recover-command';
import { historyCommand, listCommand, showCommand } from './transaction-commands';

export type { CommandDeps } from './command-deps';

/** Adds the operator commands (SPEC §8) to the `twopc` program, with the program's settings (exit override, output). */
export function addAdminCommands(program: Command, deps: CommandDeps): void {
  for (const make of [listCommand, showCommand, historyCommand, recoverCommand, retryCommand, resolveCommand, settleCommand, orphansCommand, instancesCommand, logCommand]) {
    program.addCommand(inherit(make(deps), program));
  }
}

// addCommand, unlike command(), does not pass the parent's settings down; nested commands need them too.
function inherit(cmd: Command, parent: Command): Command {
  cmd.copyInheritedSettings(parent);
  for (const sub of cmd.commands) inherit(sub, cmd);
  return cmd;
}
