import type { ConfirmStreams } from '../confirm';
import type { ExitCode } from '../exit-codes';
import type { OutputStreams } from '../output';

/** What the operator commands get from main: their streams and environment, and how to end the process. */
export interface CommandDeps {
  streams: OutputStreams;
  /** Where `resolve` asks for confirmation: stdin (a terminal, or not) and stderr. */
  terminal: ConfirmStreams;
  env: NodeJS.ProcessEnv;
  /** Ends the CLI with this code once output is written. */
  exit(code: ExitCode): void;
}
