import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const STAMP = '.twopc-stamp';

/**
 * Generates the Prisma client of `schemaFile` (into its generator's
 * `output`, relative to the schema, a git-ignored folder), offline, unless
 * the one there was generated from this very schema by this Prisma version.
 * Returns whether it generated. `prisma generate` first fetches the schema
 * engine, which it does not run: PRISMA_SCHEMA_ENGINE_BINARY naming any
 * existing file skips the download. Two processes may run this at once:
 * each generates into its own folder and renames it into place; the loser
 * keeps the winner's (identical) client.
 *
 * @example
 * generatePrismaClient(path.join(__dirname, 'schema.prisma')); // then: import { PrismaClient } from './generated/prisma/client'
 */
export function generatePrismaClient(schemaFile: string): boolean {
  const schema = fs.readFileSync(schemaFile, 'utf8');
  const output = /^\s*output\s*=\s*"([^"]+)"/m.exec(schema)?.[1];
  if (!output || path.isAbsolute(output) || output.startsWith('..')) throw new Error(`${schemaFile}: the generator needs an output folder beside the schema (output = "./generated/prisma")`);
  const dir = path.dirname(schemaFile);
  const target = path.join(dir, output);
  const prismaDir = path.dirname(require.resolve('prisma/package.json'));
  const version = (JSON.parse(fs.readFileSync(path.join(prismaDir, 'package.json'), 'utf8')) as { version: string }).version;
  const stamp = createHash('sha256').update(`${version}\n${schema}`).digest('hex');
  if (stampOf(target) === stamp) return false;
  const work = fs.mkdtempSync(path.join(dir, '.generate-'));
  try {
    fs.writeFileSync(path.join(work, 'schema.prisma'), schema);
    const run = spawnSync(process.execPath, [path.join(prismaDir, 'build/index.js'), 'generate', '--schema', path.join(work, 'schema.prisma')], {
      cwd: ROOT,
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (run.status !== 0) throw new Error(`prisma generate failed (${run.status ?? run.signal}):\n${run.stdout}\n${run.stderr}`);
    const generated = path.join(work, output);
    fs.writeFileSync(path.join(generated, STAMP), stamp);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (fs.existsSync(target) && stampOf(target) !== stamp) fs.rmSync(target, { recursive: true, force: true });
    try {
      fs.renameSync(generated, target);
    } catch (e) {
      if (stampOf(target) !== stamp) throw e;
    }
    return true;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function stampOf(dir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, STAMP), 'utf8');
  } catch {
    return undefined;
  }
}
