import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './child-processes';

/** The compiled `twopc` CLI, relative to the repository root. The one place to change if the build layout moves. */
export const COORDINATOR_ENTRY = 'dist/coordinator/cli/main.js';
/** The product's sources: a build older than any of them is rebuilt before measuring. */
const PRODUCT_SOURCES = ['coordinator', 'participant-sdk/src', 'package.json'];

function newestMtime(p: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const name of fs.readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, name)));
  return newest;
}

/**
 * The coordinator is measured as it runs in production, compiled (`npm run
 * build`), not under tsx: its memory and event loop are then the product's
 * own. Builds when the output is missing or older than a product source
 * (`rebuild: 'never'` measures whatever is there). Returns the entry's path.
 */
export function ensureCoordinatorBuild(rebuild: 'auto' | 'always' | 'never', log: (line: string) => void): string {
  const entry = path.join(REPO_ROOT, COORDINATOR_ENTRY);
  const built = fs.existsSync(entry) ? fs.statSync(entry).mtimeMs : 0;
  if (rebuild === 'never') {
    if (!built) throw new Error(`${COORDINATOR_ENTRY} is missing: run npm run build (or drop --no-build)`);
    return entry;
  }
  if (rebuild === 'auto' && built > 0 && built >= Math.max(...PRODUCT_SOURCES.map((s) => newestMtime(path.join(REPO_ROOT, s))))) return entry;
  log(`building the coordinator (npm run build): ${built ? 'sources changed since the last build' : `${COORDINATOR_ENTRY} is missing`}…`);
  const started = Date.now();
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const after = fs.existsSync(entry) ? fs.statSync(entry).mtimeMs : 0;
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  if (after < started - 1000) throw new Error(`npm run build did not produce ${COORDINATOR_ENTRY} (exit ${result.status}):\n${output.slice(0, 4000)}`);
  // tsc emits despite type errors elsewhere in the tree (tests, tooling); the coordinator's own output is what is run.
  if (result.status !== 0) log(`npm run build reported errors (exit ${result.status}); measuring its output anyway:\n${output.split('\n').slice(0, 10).join('\n')}`);
  log(`built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return entry;
}
