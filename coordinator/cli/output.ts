import { errorMessage, isTwopcError } from '../engine/ports/protocol';
import { CliError, type ExitCode } from './exit-codes';

/** Where a command writes (process.stdout / process.stderr, or a test's buffers). */
export interface OutputStreams {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
}

/**
 * A command's output: the result on stdout (text for people, or one JSON
 * line with `--json`), notes and errors on stderr. With `--json` an error is
 * also one JSON line on stdout (`{"error": {code, message, exitCode}}`), so a
 * script reading stdout always gets JSON.
 */
export class Output {
  constructor(
    readonly json: boolean,
    readonly streams: OutputStreams,
  ) {}

  /** The command's result: `value` as JSON, or `text()` for people. */
  result(value: unknown, text: () => string): void {
    this.streams.stdout.write(this.json ? `${JSON.stringify(value)}\n` : text());
  }

  /** A remark for people (never part of the result). */
  note(text: string): void {
    this.streams.stderr.write(`${text}\n`);
  }

  error(e: unknown, exitCode: ExitCode): void {
    const code = errorCode(e);
    this.streams.stderr.write(`twopc: ${errorMessage(e)}${code ? ` [${code}]` : ''}\n`);
    if (this.json) this.jsonError(e, exitCode);
  }

  /** The `--json` line of an error alone, for one whose text is already on stderr (commander's usage errors). */
  jsonError(e: unknown, exitCode: ExitCode): void {
    const code = errorCode(e);
    this.streams.stdout.write(`${JSON.stringify({ error: { ...(code ? { code } : {}), message: errorMessage(e), exitCode } })}\n`);
  }
}

function errorCode(e: unknown): string | undefined {
  return isTwopcError(e) || e instanceof CliError ? e.code : undefined;
}
