import { ADMIN_TOKEN, startTestService, type TestService } from '../service/service-fixture';

// `twopc serve` serves the console's files at /ui/ with its security headers, and nothing else from there.

describe('the console route', () => {
  let svc: TestService;

  beforeAll(async () => {
    svc = await startTestService();
  });

  afterAll(async () => {
    await svc?.close();
  });

  const get = (p: string, init: RequestInit = {}) => fetch(`${svc.base}${p}`, { redirect: 'manual', ...init });

  it('redirects /ui to /ui/ and serves the page, its script and style with a strict CSP, no token needed', async () => {
    const bare = await get('/ui?x=1');
    expect([bare.status, bare.headers.get('location')]).toEqual([301, '/ui/?x=1']);
    for (const [p, type] of [['/ui/', 'text/html'], ['/ui/js/main.js', 'javascript'], ['/ui/console.css', 'text/css'], ['/ui/favicon.svg', 'image/svg+xml']] as const) {
      const res = await get(p);
      expect([p, res.status]).toEqual([p, 200]);
      expect(res.headers.get('content-type')).toContain(type);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toMatch(/default-src 'none'/);
      expect(csp).toMatch(/script-src 'self'(;|$)/);
      expect(csp).toMatch(/style-src 'self'(;|$)/);
      expect(csp).toMatch(/frame-ancestors 'none'/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('set-cookie')).toBeNull();
    }
  });

  it('has no inline script or style in its page', async () => {
    const html = await (await get('/ui/')).text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('serves nothing outside its folder and takes no writes', async () => {
    for (const p of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/%2e%2e%2fpackage.json', '/ui/.hidden', '/ui/missing.js']) {
      const res = await get(p);
      expect([p, res.status]).toEqual([p, 404]);
    }
    const post = await get('/ui/', { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(post.status).toBe(404);
  });
});
