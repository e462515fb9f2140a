import { createInterface } from 'node:readline/promises';
import { CliError, EXIT } from './exit-codes';

/** The terminal a confirmation is asked on (process.stdin / process.stderr, or a test's streams). */
export interface ConfirmStreams {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream;
}

/**
 * Asks a person to confirm a decision that cannot be undone. `yes` skips the
 * question. Without a terminal on stdin nobody can answer, so it refuses
 * (scripts pass `--yes`) instead of reading whatever is piped in. Throws a
 * CliError with exit code 5 (refused) unless the answer is `y` or `yes`.
 *
 * @example
 * await confirm(`Record COMMIT for ${id}?`, { yes: opts.yes, streams: { input: process.stdin, output: process.stderr } });
 */
export async function confirm(question: string, options: { yes: boolean; streams: ConfirmStreams }): Promise<void> {
  if (options.yes) return;
  if (!options.streams.input.isTTY) {
    throw new CliError(EXIT.conflict, 'refusing to record a decision without confirmation: stdin is not a terminal; pass --yes to confirm in a script');
  }
  const rl = createInterface({ input: options.streams.input, output: options.streams.output, terminal: true });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new CliError(EXIT.conflict, 'not confirmed: nothing was recorded');
  } finally {
    rl.close();
  }
}
