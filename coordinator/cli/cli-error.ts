import type { ExitCode } from './exit-codes';

/**
 * A failure of the CLI itself (bad usage, a refusal, no log where one was
 * expected) that ends the command with a chosen exit code. Engine and API
 * failures stay TwopcErrors and are mapped by `exitCodeFor`.
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
