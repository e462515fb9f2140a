import type { RequestHandler } from 'express';
import { tokenMatches } from '../../participant-sdk/src/signature';
import { sendAnswer } from './answer';
import { TwopcError } from '../errors';
import { problemForTwopcError } from './problem';

/**
 * Bearer-token check for the `/v1` API (SPEC §5): `Authorization: Bearer <token>`
 * must equal one of `tokens`, compared in constant time. Every token is
 * compared, so the time taken does not tell which one (or none) matched.
 * An empty list means authentication is off (`insecure`).
 *
 * @example
 * app.use('/v1', bearerAuth([config.apiToken, config.adminToken].filter(Boolean)));
 */
export function bearerAuth(tokens: readonly string[]): RequestHandler {
  return (req, res, next) => {
    if (tokens.length === 0) return next();
    const given = bearerToken(req.headers.authorization);
    let matched = false;
    for (const token of tokens) matched = tokenMatches(token, given) || matched;
    if (matched) return next();
    const detail = given === undefined ? 'missing bearer token (Authorization: Bearer <token>)' : 'wrong bearer token';
    sendAnswer(res, problemForTwopcError(new TwopcError('unauthorized', detail)), { 'www-authenticate': 'Bearer realm="twopc"' });
  };
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  return m ? m[1] : undefined;
}
