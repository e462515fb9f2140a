import { randomBytes } from 'node:crypto';
import { TwopcError } from '../engine/ports/protocol';
import type { ServiceConfig } from '../assembly/service-config';

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

const newToken = () => randomBytes(24).toString('base64url');
