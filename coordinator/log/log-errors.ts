import { TwopcError, errorMessage } from '../engine/ports/protocol';

// Every error a decision log store raises, one function each, so a caller sees
// the same code, message shape and details whichever store it runs on. `where`
// names the store: a directory, or a URL without its password plus the
// schema or namespace.

/** A call on a store that is not open yet, or closed. */
export function logNotOpen(where: string, state: 'not open' | 'closed', details: Record<string, unknown> = { where }): TwopcError {
  return new TwopcError('log-unavailable', `decision log ${where} is ${state}`, details);
}

/** open() called twice on one instance. */
export function logOpenedTwice(where: string, className: string, details: Record<string, unknown> = { where }): TwopcError {
  return new TwopcError('log-unavailable', `decision log ${where}: open() was already called on this instance; create a new ${className} to reopen`, details);
}

/** Why a record passed to append() is refused, or undefined (the record's shape is checked by recordProblem). */
export function appendTypeProblem(record: unknown): string | undefined {
  return (record as { type?: unknown } | null)?.type === 'decision' ? 'type must not be decision: decisions go through decide()' : undefined;
}

/** Malformed caller input; `problem` starts with the field's name (see recordProblem). */
export function invalidRecord(operation: 'append' | 'decide', problem: string): TwopcError {
  return new TwopcError('invalid-input', `${operation}: ${problem}`, { field: problem.split(' ')[0] });
}

/**
 * The store could not be reached, or refused the write, for longer than the
 * store is willing to retry. For a decision the register on the server is
 * the truth: whoever asks it next (recovery, a sweep, a retry) gets the
 * winner, so nothing is guessed here.
 */
export function logUnreachable(where: string, operation: string, cause: unknown, attempts: number): TwopcError {
  const tries = attempts === 1 ? 'once' : `${attempts} times`;
  return new TwopcError(
    'log-unavailable',
    `decision log ${where}: ${operation} failed (tried ${tries}): ${errorMessage(cause)}`,
    { where, operation, attempts },
    { cause },
  );
}

/**
 * An append whose connection broke after it was sent, and which a read-back
 * did not find: it either never ran or is still running. Not retried, so it
 * can never be stored twice.
 */
export function appendOutcomeUnknown(where: string, cause: unknown): TwopcError {
  return new TwopcError(
    'log-unavailable',
    `decision log ${where}: the connection broke while appending and the records are not there on read-back: ${errorMessage(cause)}; not retried, so they are never stored twice (they are not forced, and a lost one is presumed abort)`,
    { where, operation: 'append' },
    { cause },
  );
}

/** A stored record that does not read back as a record: a bug, or someone else's data. Never skipped. */
export function storedRecordCorrupt(where: string, location: string, problem: string): TwopcError {
  return new TwopcError('log-corrupt', `decision log ${where}: the record at ${location} is malformed: ${problem}; refusing to act on it (damage is never skipped)`, {
    where,
    location,
    reason: problem,
  });
}

/** The store's data was written by a newer twopc than this one. */
export function newerLayout(where: string, found: number, supported: number): TwopcError {
  return new TwopcError(
    'invalid-config',
    `decision log ${where} is at layout version ${found}, but this twopc knows versions up to ${supported}: a newer twopc wrote it; run that version (or newer)`,
    { where, found, supported },
  );
}

/**
 * The store's server would not keep an acknowledged decision through a
 * crash, so the store refuses to start. `found` says what was seen and how;
 * `fix` what to change.
 */
export function logNotDurable(where: string, found: string, fix: string, details: Record<string, unknown>): TwopcError {
  return new TwopcError(
    'invalid-config',
    `decision log ${where} is not durable: ${found}. A commit decision acknowledged by this server could be lost in a crash, and then its transaction would commit on some databases and roll back on others. Fix: ${fix}; or pass allowVolatile (--allow-volatile) to start without that guarantee.`,
    { field: 'allowVolatile', where, ...details },
  );
}

/**
 * A write the store's server took but whose standbys or replicas do not have
 * it (or would not be waited for): it must not count, because a failover to
 * one of them would drop it. Nothing is guessed: the register on the server
 * stays the truth for whoever reads it back once the replicas have caught up.
 */
export function notReplicated(where: string, operation: string, found: string, fix: string, details: Record<string, unknown>): TwopcError {
  return new TwopcError(
    'log-unavailable',
    `decision log ${where}: ${operation} not confirmed: ${found}. A decision counts only once every standby or replica a failover could promote has it. Fix: ${fix}.`,
    { where, operation, ...details },
  );
}

/** The loud warning a store started with allowVolatile gives. */
export function volatileWarning(refusal: TwopcError): string {
  return `STARTING WITHOUT DURABLE DECISIONS (allowVolatile): ${refusal.message.replace(/ Fix: .*$/, '')} Use this for development only.`;
}

/** Where warnings go unless a store is given its own `onWarning`: process warnings print to stderr. */
export function defaultWarning(message: string): void {
  process.emitWarning(message, { code: 'TWOPC_VOLATILE_LOG' });
}
