import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { TwopcError } from '../engine/ports/protocol';
import { problem, problemForTwopcError, sendAnswer } from './answers';
import { bearerToken } from './auth';

/** What an operator's token may do on `/v1/admin`: a viewer reads, an admin also acts (every POST). */
export const OPERATOR_ROLES = ['viewer', 'admin'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

/** A named token of the admin API (and the console). Its name is what the history records as who acted. */
export interface Operator {
  name: string;
  token: string;
  role: OperatorRole;
}

/** The operator a request was authenticated as, when authentication is off (`insecure`). */
export const ANONYMOUS_OPERATOR = 'anonymous';

const digest = (token: string): Buffer => createHmac('sha256', 'twopc-operator-token').update(token).digest();

/** The operator whose token `given` is, compared in constant time against every one (no early exit). */
function operatorFinder(operators: readonly Operator[]): (given: string | undefined) => Operator | undefined {
  const expected = operators.map((o) => ({ o, d: digest(o.token) }));
  return (given) => {
    if (given === undefined) return undefined;
    const d = digest(given);
    let found: Operator | undefined;
    for (const e of expected) if (timingSafeEqual(e.d, d) && !found) found = e.o;
    return found;
  };
}

/** Who a request on `/v1/admin` was let in as. */
export interface OperatorIdentity {
  name: string;
  role: OperatorRole;
}

/** The operator `adminAuth` let this request in as (set on `res.locals`). */
export function operatorOf(req: Request): OperatorIdentity | undefined {
  const who: unknown = req.res?.locals.operator;
  return typeof who === 'object' && who !== null ? (who as OperatorIdentity) : undefined;
}

/**
 * Guards `/v1/admin`: only an operator's token opens it (the API token does
 * not), and only an `admin` may act: every POST of a `viewer` is refused with
 * 403 `forbidden`, here in the API, whatever a page shows. With no operator
 * (none configured, none generated: see `resolveApiAuth`) the admin API is
 * off, except when authentication is off altogether (`insecure`, development
 * only), where it is as open as the rest of `/v1` and acts as `anonymous`.
 *
 * @example
 * app.use('/v1/admin', adminAuth(auth.operators, auth.tokens.length === 0));
 */
export function adminAuth(operators: readonly Operator[], authenticationOff: boolean): RequestHandler {
  const challenge = { 'www-authenticate': 'Bearer realm="twopc-admin"' };
  if (operators.length === 0) {
    if (authenticationOff) {
      return (_req, res, next) => {
        res.locals.operator = { name: ANONYMOUS_OPERATOR, role: 'admin' } satisfies OperatorIdentity;
        next();
      };
    }
    return (_req, res) => {
      const off = new TwopcError('unauthorized', 'the admin API is off: this coordinator has no admin token (TWOPC_ADMIN_TOKEN, or adminToken / tokens in the config file)');
      sendAnswer(res, problemForTwopcError(off), challenge);
    };
  }
  const find = operatorFinder(operators);
  return (req, res, next) => {
    const given = bearerToken(req.headers.authorization);
    const operator = find(given);
    if (!operator) {
      const detail = given === undefined ? 'missing bearer token (Authorization: Bearer <token>)' : 'wrong bearer token';
      return sendAnswer(res, problemForTwopcError(new TwopcError('unauthorized', detail)), challenge);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && operator.role !== 'admin') {
      return sendAnswer(res, problem(403, 'forbidden', `operator ${operator.name} has the viewer role: it may look, not act (${req.method} needs the admin role)`));
    }
    res.locals.operator = { name: operator.name, role: operator.role } satisfies OperatorIdentity;
    next();
  };
}
