import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  dev?: boolean;
  link?: boolean;
  [key: string]: unknown;
}

/** The two packages, packed as `npm pack` does for a publish (prepack builds them). */
export function packBoth(dest: string): { twopc: string; sdk: string } {
  const pack = (dir: string): string => {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dest], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const [info] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
    return path.join(dest, info.filename);
  };
  return { twopc: pack(ROOT), sdk: pack(path.join(ROOT, 'participant-sdk')) };
}

/**
 * The entries of the repository's lock file that `names` need, with their
 * dependencies (nested copies included): what `npm ci --offline` then takes
 * from the npm cache the repository's own `npm ci` filled, so the install
 * needs no registry and takes seconds.
 */
function closure(lock: Record<string, LockEntry>, names: string[]): Record<string, LockEntry> {
  const out: Record<string, LockEntry> = {};
  const visit = (name: string, from: string): void => {
    // Node's lookup: the nearest node_modules up from the dependent.
    for (let dir = from; ; dir = dir.includes('/node_modules/') ? dir.slice(0, dir.lastIndexOf('/node_modules/')) : '') {
      const key = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      const entry = lock[key];
      if (entry && !entry.link) {
        if (out[key]) return;
        out[key] = entry;
        for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) visit(dep, key);
        return;
      }
      if (dir === '') return;
    }
  };
  for (const name of names) visit(name, '');
  return out;
}

export interface ConsumerProject {
  dir: string;
  /** Runs a binary of the consumer's node_modules/.bin. */
  bin(name: string): string;
}

/**
 * An empty project that depends on the two tarballs (and on typescript and
 * the types of node, pg and express, as a TypeScript service would; on no
 * optional peer), installed offline.
 */
export function installConsumer(dir: string, tarballs: { twopc: string; sdk: string }): ConsumerProject {
  fs.mkdirSync(dir, { recursive: true });
  const rootLock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const manifest = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
  const packages: Record<string, LockEntry> = {};
  const dependencies: Record<string, string> = {};
  for (const [name, tarball, source] of [['twopc', tarballs.twopc, ROOT], ['@twopc/participant-sdk', tarballs.sdk, path.join(ROOT, 'participant-sdk')]] as const) {
    const m = manifest(source);
    const resolved = `file:${path.relative(dir, tarball)}`;
    dependencies[name] = resolved;
    const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
    packages[`node_modules/${name}`] = { version: String(m.version), resolved, integrity, dependencies: m.dependencies, peerDependencies: m.peerDependencies, peerDependenciesMeta: m.peerDependenciesMeta, ...(m.bin ? { bin: m.bin } : {}) };
    Object.assign(packages, closure(rootLock.packages, Object.keys(m.dependencies)));
  }
  const devDependencies = { typescript: '*', '@types/node': '*', '@types/pg': '*', '@types/express': '*' };
  for (const [key, entry] of Object.entries(closure(rootLock.packages, Object.keys(devDependencies)))) packages[key] ??= { ...entry, dev: true };
  const pkg = { name: 'twopc-consumer', version: '1.0.0', private: true, dependencies, devDependencies };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages: { '': pkg, ...packages } }, null, 2));
  execFileSync('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { dir, bin: (name) => path.join(dir, 'node_modules', '.bin', name) };
}
