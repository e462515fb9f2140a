import type { ErrorRequestHandler } from 'express';
import { problemOf, PROBLEM_CONTENT_TYPE } from './problem';
import type { Problem } from './wire';

export interface ProblemMiddlewareOptions {
  /** The problem for an error of the service's own (a business refusal); undefined leaves it to `problemOf`. */
  map?(error: unknown): Problem | undefined;
  /**
   * Put any error's message in `detail`, not only a TwopcError's. For tests
   * and tools: an unexpected error's text may hold internals.
   */
  exposeMessages?: boolean;
}

/**
 * An express error handler that answers every error of a service's routes as
 * RFC 9457 problem details: a TwopcError (a missing `twopc-transaction`
 * header, a transaction that aborted, a participant shutting down) with its
 * code and status (`problemOf`), the service's own errors through `map`.
 * Express 5 passes a rejected async route here, so routes just throw.
 *
 * @example
 * app.post('/orders', express.json(), async (req, res) => { ... });
 * app.use(problemMiddleware({ map: (e) => (e instanceof OutOfStock ? { type: 'urn:shop:out-of-stock', title: 'out-of-stock', status: 409, code: 'out-of-stock' } : undefined) }));
 */
export function problemMiddleware(options: ProblemMiddlewareOptions = {}): ErrorRequestHandler {
  return (error, _req, res, next) => {
    // Too late for a problem answer: express ends the response.
    if (res.headersSent) return next(error);
    let problem = options.map?.(error) ?? problemOf(error);
    if (options.exposeMessages) problem = { ...problem, detail: error instanceof Error ? error.message : String(error) };
    res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
  };
}
