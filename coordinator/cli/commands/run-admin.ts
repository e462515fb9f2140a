import type { AdminBackend } from '../admin-backend';
import { EXIT, exitCodeFor, type ExitCode } from '../exit-codes';
import type { LocalNeeds } from '../local-admin';
import { Output } from '../output';
import { Progress } from '../progress';
import { openBackend, type TargetOptions } from '../target';
import type { CommandDeps } from './command-deps';

/** What a command's work gets. */
export interface AdminContext {
  backend: AdminBackend;
  output: Output;
  progress: Progress;
}

/** What the command needs opened (offline), and the waits it passes on. */
export interface OpenSpec {
  needs: LocalNeeds;
  waitMs?: number;
  retentionMs?: number;
}

/**
 * Runs one operator command: opens the backend its options select, runs
 * `work`, prints any error, closes the backend and ends the CLI with the
 * exit code (work's own, or the one `exitCodeFor` gives its error).
 * `before` runs first, before anything is opened (argument checks, refusals).
 */
export async function runAdmin(
  deps: CommandDeps,
  opts: TargetOptions,
  spec: OpenSpec,
  work: (ctx: AdminContext) => Promise<ExitCode>,
  before?: () => void,
): Promise<void> {
  const output = new Output(opts.json === true, deps.streams);
  const progress = new Progress(deps.streams.stderr, { quiet: opts.quiet === true });
  let backend: AdminBackend | undefined;
  let code: ExitCode = EXIT.ok;
  try {
    before?.();
    backend = await openBackend(opts, spec.needs, deps.env, { waitMs: spec.waitMs, retentionMs: spec.retentionMs });
    code = await work({ backend, output, progress });
  } catch (e) {
    code = exitCodeFor(e);
    output.error(e, code);
  }
  try {
    await backend?.close();
  } catch (e) {
    // The work is done (or failed already); a close that fails (e.g. the final flush of the log) still counts.
    output.error(e, EXIT.failure);
    if (code === EXIT.ok) code = EXIT.failure;
  }
  deps.exit(code);
}
