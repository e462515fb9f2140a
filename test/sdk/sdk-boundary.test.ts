import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SDK = path.join(__dirname, '../../participant-sdk');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

// SPEC §1: the SDK ships alone, so it never imports the coordinator (nor anything else outside its folder).
describe('participant SDK boundary', () => {
  it('has no import of coordinator/ (or anything outside participant-sdk/) in its sources', () => {
    const offending: string[] = [];
    for (const file of sources(path.join(SDK, 'src'))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]([^'"]+)['"]/g)) {
        const spec = m[1];
        const escapes = spec.startsWith('.') && !path.resolve(path.dirname(file), spec).startsWith(path.join(SDK, 'src'));
        if (/(^|\/)coordinator(\/|$)/.test(spec) || escapes) offending.push(`${path.relative(SDK, file)}: ${spec}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('compiles on its own (tsc -p participant-sdk)', () => {
    const tsc = path.join(__dirname, '../../node_modules/typescript/bin/tsc');
    expect(() => execFileSync(process.execPath, [tsc, '--noEmit', '-p', SDK], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow();
  }, 60_000);

  it('declares pg and express as peer dependencies', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(SDK, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('@twopc/participant-sdk');
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(['express', 'pg']);
    expect(pkg.dependencies.zod).toBeDefined();
  });
});
