import { isTwopcError, type ErrorCode } from '../engine/ports/protocol';

/** Exit codes scripts can rely on (`twopc --help` and the README list them). */
export const EXIT = {
  ok: 0,
  /** Anything else went wrong (an unexpected error, a participant that failed mid-work). */
  failure: 1,
  /** Bad arguments or options. */
  usage: 2,
  /** Invalid configuration, no log at the data directory, a missing or wrong admin token. */
  config: 3,
  /** No such transaction. */
  notFound: 4,
  /** Refused: it would contradict a recorded decision, the state does not allow it, or it was not confirmed. */
  conflict: 5,
  /** The decision log is damaged (`log verify` found damage a start would refuse, or the log would not open). */
  logDamaged: 6,
  /** Unavailable: the coordinator unreachable or not ready, the log locked by a running coordinator, a participant database unreachable. */
  unavailable: 7,
  /** Done, but work is left: phase 2 still retrying, a heuristic hazard, an orphan left alone. */
  incomplete: 8,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * The stable `code` of a CLI failure in `--json` output: an error code of the
 * API where one means the same (bad usage is `invalid-input`, exit 2), or one
 * of the CLI's own.
 */
export type CliErrorCode = ErrorCode | 'not-confirmed' | 'not-supported' | 'forbidden' | 'failed';

const CODE_OF_EXIT: Partial<Record<ExitCode, CliErrorCode>> = { [EXIT.usage]: 'invalid-input', [EXIT.config]: 'invalid-config', [EXIT.conflict]: 'not-confirmed' };

/**
 * A failure of the CLI itself (bad usage, a refusal, no log where one was
 * expected) that ends the command with a chosen exit code. Engine and API
 * failures stay TwopcErrors and are mapped by `exitCodeFor`.
 */
export class CliError extends Error {
  readonly code: CliErrorCode;

  constructor(
    readonly exitCode: ExitCode,
    message: string,
    code?: CliErrorCode,
  ) {
    super(message);
    this.name = 'CliError';
    this.code = code ?? CODE_OF_EXIT[exitCode] ?? 'failed';
  }
}

/** The exit-code table of `twopc --help`. */
export const EXIT_CODE_HELP = [
  'Exit codes:',
  '  0  ok',
  '  1  failure (unexpected error)',
  '  2  usage: bad arguments or options',
  '  3  configuration: invalid config, no log at the data directory, missing or wrong admin token (or a viewer\'s, for an action)',
  '  4  not found: no such transaction',
  '  5  refused: would contradict a recorded decision, state does not allow it, or not confirmed',
  '  6  log damaged: log verify found damage, or the log would not open',
  '  7  unavailable: coordinator unreachable or not ready, log locked by a running coordinator,',
  '     or a participant database unreachable',
  '  8  incomplete: done, but work is left (phase 2 still retrying, heuristic hazard, orphan left)',
].join('\n');

/** The exit code an error ends the CLI with. */
export function exitCodeFor(e: unknown): ExitCode {
  if (e instanceof CliError) return e.exitCode;
  if (!isTwopcError(e)) return EXIT.failure;
  switch (e.code) {
    case 'invalid-input':
      return EXIT.usage;
    case 'invalid-config':
    case 'unauthorized':
      return EXIT.config;
    case 'not-found':
      return EXIT.notFound;
    case 'state-conflict':
    case 'transaction-aborted':
      return EXIT.conflict;
    case 'log-corrupt':
      return EXIT.logDamaged;
    case 'log-locked':
    case 'coordinator-unavailable':
    case 'owner-unavailable':
    case 'over-capacity':
    case 'participant-unavailable':
    case 'shutting-down':
      return EXIT.unavailable;
    case 'heuristic-hazard':
      return EXIT.incomplete;
    default:
      return EXIT.failure;
  }
}
