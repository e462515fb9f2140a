import { TwopcError } from '../../engine/ports/protocol';

/**
 * Checks a participant service URL given at enlistment and returns its
 * normalized form (`<origin><path>` without a trailing slash), or throws
 * `invalid-input` naming `url`.
 *
 * SSRF: the coordinator sends signed POSTs to whatever URL an API client
 * enlists, from inside the network. Only clients holding the API token can
 * enlist; beyond that, `allowList` (URL prefixes such as
 * `https://payments.internal/twopc`) confines the coordinator to known
 * participant services. Only http(s) is called, never with credentials in the
 * URL, redirects are not followed, answers are read up to a small cap and are
 * never relayed to the caller except a "no" vote's reason.
 *
 * @example
 * checkParticipantUrl('http://127.0.0.1:4001/twopc/', []) // 'http://127.0.0.1:4001/twopc'
 */
export function checkParticipantUrl(url: string, allowList: readonly string[]): string {
  const parsed = parseHttpUrl(url);
  if (!parsed.ok) throw new TwopcError('invalid-input', `url: ${parsed.problem}`, { field: 'url' });
  if (allowList.length > 0 && !allowList.some((entry) => withinPrefix(parsed.url, entry))) {
    throw new TwopcError('invalid-input', 'url: not in this coordinator\'s participantUrlAllowList', { field: 'url' });
  }
  return baseUrl(parsed.url);
}

/** Checks one allow-list entry (configuration); returns a problem description or undefined. */
export function allowListEntryProblem(entry: string): string | undefined {
  const parsed = parseHttpUrl(entry);
  return parsed.ok ? undefined : parsed.problem;
}

type Parsed = { ok: true; url: URL } | { ok: false; problem: string };

function parseHttpUrl(value: string): Parsed {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { ok: false, problem: 'must be an absolute http(s) URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, problem: 'must use http or https' };
  if (url.username || url.password) return { ok: false, problem: 'must not carry credentials (calls are signed with the participant secret)' };
  if (url.search || url.hash || value.includes('?') || value.includes('#')) return { ok: false, problem: 'must not have a query or fragment' };
  return { ok: true, url };
}

function baseUrl(url: URL): string {
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Same origin, and the path equal to or below the entry's path (on a segment boundary: `/a` admits `/a/b`, not `/ab`). */
function withinPrefix(url: URL, entry: string): boolean {
  const parsed = parseHttpUrl(entry);
  if (!parsed.ok || parsed.url.origin !== url.origin) return false;
  const prefix = parsed.url.pathname.replace(/\/+$/, '');
  const path = url.pathname.replace(/\/+$/, '');
  return prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
}
