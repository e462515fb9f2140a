import { z } from 'zod';
import { TwopcError } from '../../engine/ports/protocol';

/** An integer option in [min, max], with messages that name the field. */
export function intOption(field: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return z
    .number({ error: `${field} must be a number` })
    .int(`${field} must be an integer`)
    .min(min, `${field} must be >= ${min}`)
    .max(max, `${field} must be <= ${max}`);
}

/** A function option. */
export function fnOption(field: string) {
  return z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { message: `${field} must be a function` });
}

/**
 * Parses a store's options once; the first problem becomes `invalid-config`
 * naming the field (`<store> decision log: <message>`), as the file store's do.
 */
export function parseStoreOptions<S extends z.ZodType>(schema: S, options: unknown, store: string): z.output<S> {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.') || 'options';
  const message = issue.code === 'unrecognized_keys' ? `unknown option(s) ${field}` : issue.path.length === 0 ? 'options must be an object' : issue.message;
  throw new TwopcError('invalid-config', `${store} decision log: ${message}`, { field });
}
