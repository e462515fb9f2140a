import { randomBytes } from 'node:crypto';
import { TwopcError } from '../engine/ports/protocol';
import type { ServiceConfig } from '../assembly/service-config';

export interface ApiAuth {
  /** Tokens accepted on `/v1` (API and admin); empty when authentication is off. */
  tokens: string[];
  /** Set when no token was configured and one was generated for this run (loopback listener only). */
  generated?: string;
  /** Authentication explicitly switched off. */
  insecure: boolean;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i;

/**
 * Decides how `twopc serve` authenticates (SPEC §5: tokens come from config
 * or environment). With no API token configured:
 * - `insecure` → no authentication, said loudly in the log;
 * - a loopback-only listener (the default `127.0.0.1`, what `npm start` uses)
 *   → a random token for this run, printed once, so a fresh checkout works
 *   and is still never open;
 * - any other listener → refuse to start, naming the settings.
 */
export function resolveApiAuth(config: Pick<ServiceConfig, 'apiToken' | 'adminToken' | 'insecure' | 'host'>): ApiAuth {
  const configured = [config.apiToken, config.adminToken].filter((t): t is string => t !== undefined);
  if (config.apiToken !== undefined) return { tokens: configured, insecure: false };
  if (config.insecure) return { tokens: [], insecure: true };
  if (LOOPBACK.test(config.host)) {
    const generated = randomBytes(24).toString('base64url');
    return { tokens: [generated, ...configured], generated, insecure: false };
  }
  throw new TwopcError(
    'invalid-config',
    `apiToken: twopc serve listens on ${config.host} and needs an API token: set TWOPC_API_TOKEN (or apiToken in the config file), ` +
      'or pass --insecure (insecure: true) to serve the API without authentication',
    { field: 'apiToken' },
  );
}
