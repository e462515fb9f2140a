import { createHmac, timingSafeEqual } from 'node:crypto';

/** A participant accepts a signed call only within this distance of its own clock. */
export const SIGNATURE_TOLERANCE_MS = 5 * 60 * 1000;

function mac(secret: string, t: string, method: string, path: string, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${method.toUpperCase()} ${path}.${body}`).digest('hex');
}

/**
 * The `twopc-signature` header for a call: `t=<unix ms>,v1=<hex HMAC-SHA256 of
 * "<t>.<METHOD> <path>.<body>">`. `path` is the request path with its query,
 * as the receiver sees it; `body` the exact bytes sent ('' when none).
 */
export function signRequest(secret: string, method: string, path: string, body: string, now = Date.now()): string {
  const t = String(now);
  return `t=${t},v1=${mac(secret, t, method, path, body)}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'expired' | 'mismatch' };

/** Checks a `twopc-signature` header in constant time. */
export function verifySignature(
  secret: string,
  header: string | undefined,
  method: string,
  path: string,
  body: string,
  now = Date.now(),
  toleranceMs = SIGNATURE_TOLERANCE_MS,
): SignatureCheck {
  if (!header) return { ok: false, reason: 'missing' };
  const m = /^t=(\d{1,16}),v1=([0-9a-f]{64})$/.exec(header.trim());
  if (!m) return { ok: false, reason: 'malformed' };
  if (Math.abs(now - Number(m[1])) > toleranceMs) return { ok: false, reason: 'expired' };
  const expected = Buffer.from(mac(secret, m[1], method, path, body), 'hex');
  const given = Buffer.from(m[2], 'hex');
  return timingSafeEqual(expected, given) ? { ok: true } : { ok: false, reason: 'mismatch' };
}

const tokenDigest = (token: string): Buffer => createHmac('sha256', 'twopc-token').update(token).digest();

/** Constant-time comparison of a bearer token (SPEC §5). */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(tokenDigest(expected), tokenDigest(given));
}

/**
 * `tokenMatches` against several tokens, with each expected token hashed once
 * up front: a request costs one HMAC, not two per token. Every token is
 * compared, so the time taken does not tell which one (or none) matched.
 *
 * @example
 * const accepts = tokenChecker([apiToken, adminToken]);
 * accepts(bearerToken(req.headers.authorization)); // true or false
 */
export function tokenChecker(tokens: readonly string[]): (given: string | undefined) => boolean {
  const expected = tokens.map(tokenDigest);
  return (given) => {
    if (given === undefined) return false;
    const digest = tokenDigest(given);
    let matched = false;
    for (const e of expected) matched = timingSafeEqual(e, digest) || matched;
    return matched;
  };
}
