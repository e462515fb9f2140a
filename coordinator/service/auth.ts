import type { RequestHandler } from 'express';
import { tokenChecker } from '../../participant-sdk/src';
import { Answer, problemForTwopcError, sendAnswer } from './answers';
import { TwopcError } from '../engine/ports/protocol';

/**
 * The bearer-token check of the `/v1` API (SPEC §5), free of any HTTP
 * framework: takes the `Authorization` header and answers undefined when the
 * caller may pass, or the 401 problem (with `WWW-Authenticate`) to send.
 * `Bearer <token>` must equal one of `tokens`, compared in constant time
 * (see `tokenChecker`). An empty list means authentication is off (`insecure`).
 */
export function bearerCheck(tokens: readonly string[]): (authorization: string | undefined) => Answer | undefined {
  if (tokens.length === 0) return () => undefined;
  const accepts = tokenChecker(tokens);
  return (authorization) => {
    const given = bearerToken(authorization);
    if (accepts(given)) return undefined;
    const detail = given === undefined ? 'missing bearer token (Authorization: Bearer <token>)' : 'wrong bearer token';
    const refused = problemForTwopcError(new TwopcError('unauthorized', detail));
    return { ...refused, headers: { ...refused.headers, 'www-authenticate': 'Bearer realm="twopc"' } };
  };
}

/**
 * Bearer-token check for the `/v1` API as express middleware (see `bearerCheck`).
 *
 * @example
 * app.use('/v1', bearerAuth([config.apiToken, config.adminToken].filter(Boolean)));
 */
export function bearerAuth(tokens: readonly string[]): RequestHandler {
  const check = bearerCheck(tokens);
  return (req, res, next) => {
    const refused = check(req.headers.authorization);
    if (!refused) return next();
    sendAnswer(res, refused);
  };
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  return m ? m[1] : undefined;
}
