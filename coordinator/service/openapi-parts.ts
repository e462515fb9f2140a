import { z } from 'zod';
import { LIST_STATES, MAX_LIST_LIMIT } from '../engine/transaction-listing';

// Building blocks of the OpenAPI document, shared by openapi.ts and openapi-admin.ts.
// Message schemas come from the zod schemas that validate them.

export const schema = (s: z.ZodType, io: 'input' | 'output' = 'output') => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
export const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });

/** Problems any write (a POST, with a body and an Idempotency-Key) may answer on top of its API's read problems. */
export const bodyProblems = {
  '413': problemResponse('body over the limit (`payload-too-large`)'),
  '415': problemResponse('body is not JSON (`unsupported-media-type`)'),
  '422': problemResponse('Idempotency-Key reused with a different request (`idempotency-key-reused`)'),
};
export const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' }, description: 'transaction id (UUID v7)' };
export const idempotencyHeader = (description: string) => ({
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  schema: { type: 'string', minLength: 1, maxLength: 255 },
  description,
});
/** `state` and `limit` of the transaction lists (public and admin). */
export const listParams = [
  { name: 'state', in: 'query', required: false, schema: { type: 'string', enum: [...LIST_STATES] } },
  { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: MAX_LIST_LIMIT, default: 100 } },
  { name: 'offset', in: 'query', required: false, description: 'skip this many of the matching transactions (paging)', schema: { type: 'integer', minimum: 0, maximum: 999_999_999, default: 0 } },
  { name: 'participant', in: 'query', required: false, description: 'only those with a branch on this participant', schema: { type: 'string', minLength: 1, maxLength: 200 } },
  { name: 'idPrefix', in: 'query', required: false, description: 'only those whose id starts with this', schema: { type: 'string', pattern: '^[0-9a-fA-F-]{1,36}$' } },
  { name: 'minAgeMs', in: 'query', required: false, description: 'only those begun at least this many milliseconds ago', schema: { type: 'integer', minimum: 0, maximum: 999_999_999_999 } },
];
