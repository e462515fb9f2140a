import type { z } from 'zod';
import { firstIssue } from '../../participant-sdk/src';
import { TwopcError } from '../engine/ports/protocol';

/**
 * Validates a body or query with a wire schema; throws `invalid-input` naming
 * the field (an unknown key is named itself, not its parent).
 */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const field = [...issue.path.map(String), issue.keys[0]].join('.');
    throw new TwopcError('invalid-input', `${field}: unknown field`, { field });
  }
  const { field, message } = firstIssue(parsed.error);
  throw new TwopcError('invalid-input', message, { field });
}

/**
 * Throws `invalid-input` naming `field` if `value` nests deeper than
 * `maxDepth`. Iterative: a body-sized JSON value can nest tens of thousands of
 * levels, which the recursive `JSON.stringify` of the log would not survive.
 */
export function assertJsonDepth(value: unknown, maxDepth: number, field: string): void {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth >= maxDepth) throw new TwopcError('invalid-input', `${field}: nests deeper than ${maxDepth} levels`, { field });
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
}
