import path from 'node:path';
import express, { type RequestHandler } from 'express';

/**
 * The console's headers. Its pages load nothing but their own files and speak
 * only to this origin's API, so the policy allows exactly that: no inline
 * script or style (no `unsafe-inline`), no other origin, no framing, no form
 * posts (sign-in is handled by the page's script; the token stays in the tab).
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  // Small files, and a new version must be picked up at once by an operator's open tab on reload.
  'cache-control': 'no-cache',
};

/**
 * The directory of the console's files: shipped with the package beside this
 * module (`npm run build` copies them next to the compiled one), so the
 * console works offline and needs no build step of its own.
 */
export const CONSOLE_DIR = path.join(__dirname, 'static');

/**
 * Serves the operator console at `/ui/` (mount it at `/ui`): static files
 * only. The page reads the admin API with the operator's token, sent as an
 * `Authorization` header from the tab's sessionStorage, never as a cookie: no
 * request of another site can carry it, so there is nothing to forge (CSRF).
 *
 * @example
 * app.use('/ui', consoleHandler());
 */
export function consoleHandler(dir = CONSOLE_DIR): RequestHandler {
  const files = express.static(dir, {
    index: 'index.html',
    redirect: false,
    dotfiles: 'ignore',
    etag: true,
    setHeaders: (res) => res.set(HEADERS),
  });
  return (req, res, next) => {
    // The pages' relative links need the trailing slash.
    if (req.originalUrl === '/ui' || req.originalUrl.startsWith('/ui?')) return res.redirect(301, `/ui/${req.originalUrl.slice(3)}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    files(req, res, next);
  };
}
