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

  // The packages its sources load (a doc comment's example counts too: it is what users are told to import).
  function packagesImported(): Set<string> {
    const names = new Set<string>();
    for (const file of sources(path.join(SDK, 'src'))) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]([^'".][^'"]*)['"]/g)) {
        const parts = m[1].split('/');
        const name = m[1].startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
        if (!name.startsWith('node:') && name !== '@twopc/participant-sdk') names.add(name);
      }
    }
    return names;
  }

  // Issue 15: installed alone, it needs only what its users use. express is loaded by the main
  // entry (the router); everything else is optional: pg's and express's types, the ORMs (each
  // loaded by its own entry point only) and OpenTelemetry (a no-op without it).
  it('declares every package it imports: zod and undici as dependencies, express as its one required peer, the rest as optional peers', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(SDK, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('@twopc/participant-sdk');
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['undici', 'zod']);
    const declared = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)]);
    expect([...packagesImported()].filter((name) => !declared.has(name))).toEqual([]);
    const requiredPeers = Object.keys(pkg.peerDependencies).filter((name) => pkg.peerDependenciesMeta?.[name]?.optional !== true);
    expect(requiredPeers).toEqual(['express']);
    expect(pkg.peerDependencies['@types/express']).toBeDefined();
  });
});
