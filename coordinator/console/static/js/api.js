// The admin API, as the operator's token allows. The token lives in this tab's sessionStorage and goes out as an
// Authorization header: never a cookie, so no other site's request can carry it.

const TOKEN_KEY = 'twopc.console.token';

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  save: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A refusal or failure of the API: its problem `code` and `detail` as the coordinator wrote them. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

/** Called when the API says the token is no good (401): the page signs out. */
let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  const token = session.token();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'coordinator-unreachable', `the coordinator did not answer (${e.message})`);
  }
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (res.ok) return parsed;
  const code = parsed?.code ?? `http-${res.status}`;
  const detail = parsed?.detail ?? `${res.status} ${res.statusText}`;
  if (res.status === 401) onUnauthorized(detail);
  throw new ApiError(res.status, code, detail);
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body = {}) => call('POST', path, body),
  /** Prometheus text of /metrics (no token needed: it carries no transaction data). */
  async metrics() {
    const res = await fetch('/metrics', { credentials: 'omit', cache: 'no-store' });
    if (!res.ok) throw new ApiError(res.status, `http-${res.status}`, 'metrics unavailable');
    return res.text();
  },
  async ready() {
    const res = await fetch('/readyz', { credentials: 'omit', cache: 'no-store' });
    return (await res.json()).ready === true;
  },
};

/** `/v1/admin/transactions?…` with the set parameters only. */
export function listPath(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `/v1/admin/transactions${s ? `?${s}` : ''}`;
}
