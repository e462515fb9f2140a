import type { Problem } from '../../../participant-sdk/src';

/** A business refusal, answered as a problem with its own code; thrown from a branch's work, it makes the branch vote no. */
export class Refusal extends Error {
  constructor(
    readonly status: 404 | 409,
    readonly code: 'out-of-stock' | 'insufficient-funds' | 'no-such-product' | 'no-such-customer',
    message: string,
  ) {
    super(message);
  }
}

/** For the service's `problemMiddleware`: a Refusal answers with its status and code; anything else is left to the SDK. */
export function refusalProblem(e: unknown): Problem | undefined {
  return e instanceof Refusal ? { type: `urn:shop:problem:${e.code}`, title: e.code, status: e.status, code: e.code, detail: e.message } : undefined;
}

/**
 * The CHECK constraint a failed statement violated (SQLSTATE 23514), found
 * in the error or its causes: Kysely throws pg's error as it is, Drizzle
 * wraps it in its `DrizzleQueryError`.
 */
export function violatedCheck(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    const { code, constraint } = e as { code?: unknown; constraint?: unknown };
    if (code === '23514' && typeof constraint === 'string') return constraint;
  }
  return undefined;
}
