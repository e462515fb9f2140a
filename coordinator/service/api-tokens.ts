import { randomBytes } from 'node:crypto';
import { TwopcError } from '../engine/ports/protocol';
import type { ServiceConfig } from '../assembly/service-config';
import type { Operator } from './admin-auth';

export interface ApiAuth {
  /** Tokens accepted on `/v1` (API and admin); empty when authentication is off. */
  tokens: string[];
  /** The token that opens `/v1/admin` (configured, or generated); none: the admin API is off (open when `insecure`). */
  adminToken?: string;
  /** The tokens generated for this run when no API token was configured (loopback listener only). */
  generated?: { apiToken: string; adminToken?: string };
  /** Authentication explicitly switched off. */
  insecure: boolean;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i;

/**
 * Decides how `twopc serve` authenticates (SPEC §5: tokens come from config
 * or environment). With no API token configured:
 * - `insecure` → no authentication, said loudly in the log;
 * - a loopback-only listener (the default `127.0.0.1`, what `npm start` uses)
 *   → random tokens for this run, printed once, so a fresh checkout works
 *   (the API and `twopc --url` alike) and is still never open: an API token,
 *   and an admin token of its own unless one is configured, so the token
 *   handed to services still cannot resolve transactions or read the log;
 * - any other listener → refuse to start, naming the settings.
 * A configured API token turns generation off entirely: a deployment that
 * chose its tokens gets the admin API only with an admin token it chose.
 */
export function resolveApiAuth(config: Pick<ServiceConfig, 'apiToken' | 'adminToken' | 'insecure' | 'host'>): ApiAuth {
  const admin = config.adminToken === undefined ? {} : { adminToken: config.adminToken };
  if (config.apiToken !== undefined) return { tokens: [config.apiToken, ...(config.adminToken === undefined ? [] : [config.adminToken])], ...admin, insecure: false };
  if (config.insecure) return { tokens: [], ...admin, insecure: true };
  if (LOOPBACK.test(config.host)) {
    const apiToken = newToken();
    const adminToken = config.adminToken ?? newToken();
    return {
      tokens: [apiToken, adminToken],
      adminToken,
      generated: { apiToken, ...(config.adminToken === undefined ? { adminToken } : {}) },
      insecure: false,
    };
  }
  throw new TwopcError(
    'invalid-config',
    `apiToken: twopc serve listens on ${config.host} and needs an API token: set TWOPC_API_TOKEN (or apiToken in the config file), ` +
      'or pass --insecure (insecure: true) to serve the API without authentication',
    { field: 'apiToken' },
  );
}

/** The name the admin token (configured or generated) acts under. */
export const ADMIN_TOKEN_NAME = 'admin';

/**
 * Who may open `/v1/admin`: the named tokens of the config, and the admin
 * token (configured or generated) as the operator `admin`. A named token
 * called `admin` beside an admin token would make the history ambiguous.
 */
export function operatorsOf(config: Pick<ServiceConfig, 'tokens'>, auth: ApiAuth): Operator[] {
  const operators: Operator[] = config.tokens.map((t) => ({ ...t }));
  if (auth.adminToken !== undefined) {
    if (operators.some((o) => o.name === ADMIN_TOKEN_NAME)) {
      throw new TwopcError('invalid-config', `tokens: the name ${ADMIN_TOKEN_NAME} is the admin token's (TWOPC_ADMIN_TOKEN); name this one otherwise`, { field: 'tokens' });
    }
    if (operators.some((o) => o.token === auth.adminToken)) throw new TwopcError('invalid-config', 'tokens: a named token equals the admin token', { field: 'tokens' });
    operators.push({ name: ADMIN_TOKEN_NAME, token: auth.adminToken, role: 'admin' });
  }
  return operators;
}

const newToken = () => randomBytes(24).toString('base64url');
