#!/usr/bin/env node
// CI (issue 13): the product build holds the product alone, and no product
// source file is over the size limit. Run after `npm run build`.
//
//   node .ci/check-product.mjs
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const MAX_LINES = 350;
// What `tsc -p tsconfig.build.json` may emit: the two packages' code, and the
// package.json the service reads its version from.
const ALLOWED = [/^dist\/coordinator\//, /^dist\/participant-sdk\/src\//, /^dist\/package\.json$/];
const PRODUCT_SOURCES = ['coordinator', 'participant-sdk/src'];

function walk(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full) : [full];
  });
}

const rel = (f) => path.relative(ROOT, f).split(path.sep).join('/');
const problems = [];

const emitted = walk(path.join(ROOT, 'dist')).map(rel);
if (emitted.length === 0) problems.push('dist/ is empty: run `npm run build` first');
for (const f of emitted) if (!ALLOWED.some((re) => re.test(f))) problems.push(`${f}: not product code (tests, bench, chaos, harness and examples stay out of the build)`);

// The console's files (coordinator/console/static) are not compiled: the build copies them beside the
// compiled console route, which serves them from there; a package without them would answer 404 at /ui/.
for (const f of walk(path.join(ROOT, 'coordinator/console/static')).map(rel)) {
  if (!emitted.includes(`dist/${f}`)) problems.push(`dist/${f}: missing (npm run build copies the console's static files)`);
}

for (const dir of PRODUCT_SOURCES) {
  for (const f of walk(path.join(ROOT, dir)).filter((f) => f.endsWith('.ts'))) {
    const lines = fs.readFileSync(f, 'utf8').split('\n').length - 1;
    if (lines > MAX_LINES) problems.push(`${rel(f)}: ${lines} lines (the limit is ${MAX_LINES}: split it by job)`);
  }
}

if (problems.length > 0) {
  process.stderr.write(`check-product: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`check-product: dist holds ${emitted.length} product files; every product source is within ${MAX_LINES} lines\n`);
