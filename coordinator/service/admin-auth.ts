import type { RequestHandler } from 'express';
import { TwopcError } from '../engine/ports/protocol';
import { problemForTwopcError, sendAnswer } from './answers';
import { bearerAuth } from './auth';

/**
 * Guards `/v1/admin`: only the admin token opens it (the API token does not).
 * With no admin token (configured, or generated with the API token on a
 * loopback listener: see `resolveApiAuth`) the admin API is off, except when
 * authentication is off altogether (`insecure`, development only), where it
 * is as open as the rest of `/v1`.
 *
 * @example
 * app.use('/v1/admin', adminAuth(config.adminToken, apiTokens.length === 0));
 */
export function adminAuth(adminToken: string | undefined, authenticationOff: boolean): RequestHandler {
  if (adminToken !== undefined) return bearerAuth([adminToken]);
  if (authenticationOff) return (_req, _res, next) => next();
  return (_req, res) => {
    const off = new TwopcError('unauthorized', 'the admin API is off: this coordinator has no admin token (TWOPC_ADMIN_TOKEN, or adminToken in the config file)');
    sendAnswer(res, problemForTwopcError(off), { 'www-authenticate': 'Bearer realm="twopc-admin"' });
  };
}
