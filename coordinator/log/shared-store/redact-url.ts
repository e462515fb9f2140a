/**
 * A connection URL fit for messages and logs: the password is dropped, the
 * rest kept (user, host, port, database). Something that does not parse as
 * a URL is reduced to its scheme, since it might be a secret.
 *
 * @example
 * redactUrl('postgres://app:s3cret@db:5432/twopc') // 'postgres://app@db:5432/twopc'
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0];
    return scheme ? `${scheme}//…` : '…';
  }
}
