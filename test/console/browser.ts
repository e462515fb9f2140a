import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (CHROMIUM_BIN overrides): the browser tests drive the system browser, never a downloaded one. */
export function chromiumPath(): string | undefined {
  const candidate = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
  return fs.existsSync(candidate) ? candidate : undefined;
}

/**
 * `describe` for the browser suites. Without Chromium they are skipped with a
 * message — or, under CI=true, fail: a CI machine without the browser is a
 * broken CI machine, not a pass (`.ci/run` installs it).
 */
export function describeIfChromium(name: string, fn: () => void): void {
  if (chromiumPath()) return describe(name, fn);
  const message = `${name}: skipped, no Chromium at ${process.env.CHROMIUM_BIN || '/usr/bin/chromium'} (apt-get install chromium, or set CHROMIUM_BIN)`;
  if (process.env.CI === 'true') throw new Error(`${message} — and CI=true, where the browser tests must run`);
  console.warn(message);
  describe.skip(`${name} [no Chromium]`, fn);
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Browser {
  context: BrowserContext;
  /** A new tab (its own sessionStorage) that records console errors and CSP violations. */
  newPage(): Promise<Page>;
  /** Every console error and page error seen so far, on any tab. */
  readonly errors: string[];
  close(): Promise<void>;
}

/** Headless Chromium on a fresh profile directory, removed on close. */
export async function launchChromium(): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  const errors: string[] = [];
  const watch = (page: Page) => {
    page.on('console', (m) => {
      // Chromium logs every 4xx answer the page asked for (a refused token, a viewer's 403, a register's 409):
      // the page shows those itself. Anything else (a CSP violation, a script error) counts.
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  };
  for (const p of context.pages()) watch(p);
  return {
    context,
    errors,
    async newPage() {
      const page = await context.newPage();
      watch(page);
      return page;
    },
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core in the page (evaluated through the DevTools protocol, which the
 * page's CSP does not govern, so the page keeps its policy) and returns the
 * serious and critical violations, each as `id: help (selectors)`.
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  // Browser-side code as text: this project compiles without the DOM's types.
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
    r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) })))`)) as Array<{ id: string; impact: string; help: string; targets: string[] }>;
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.targets.join(', ')}`);
}
