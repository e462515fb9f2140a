import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const RECIPES = path.join(__dirname, 'recipes');
/** Where recipes/schema.prisma generates to (git-ignored; recipes/prisma.ts imports it). */
const TARGET = path.join(RECIPES, 'generated', 'prisma');
const STAMP = '.twopc-stamp';

/**
 * Generates the Prisma client of recipes/schema.prisma, offline, unless the
 * one there was generated from this very schema by this Prisma version.
 * `prisma generate` first fetches the schema engine, which it does not run:
 * PRISMA_SCHEMA_ENGINE_BINARY naming any existing file skips the download.
 * Two suites may run this at once: each generates into its own folder and
 * renames it into place; the loser keeps the winner's (identical) client.
 */
export function generatePrismaClient(): void {
  const schema = fs.readFileSync(path.join(RECIPES, 'schema.prisma'), 'utf8');
  const prismaDir = path.dirname(require.resolve('prisma/package.json'));
  const version = (JSON.parse(fs.readFileSync(path.join(prismaDir, 'package.json'), 'utf8')) as { version: string }).version;
  const stamp = createHash('sha256').update(`${version}\n${schema}`).digest('hex');
  if (stampOf(TARGET) === stamp) return;
  const work = fs.mkdtempSync(path.join(RECIPES, '.generate-'));
  try {
    fs.writeFileSync(path.join(work, 'schema.prisma'), schema);
    const run = spawnSync(process.execPath, [path.join(prismaDir, 'build/index.js'), 'generate', '--schema', path.join(work, 'schema.prisma')], {
      cwd: ROOT,
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (run.status !== 0) throw new Error(`prisma generate failed (${run.status ?? run.signal}):\n${run.stdout}\n${run.stderr}`);
    const generated = path.join(work, 'generated', 'prisma');
    fs.writeFileSync(path.join(generated, STAMP), stamp);
    fs.mkdirSync(path.dirname(TARGET), { recursive: true });
    if (fs.existsSync(TARGET) && stampOf(TARGET) !== stamp) fs.rmSync(TARGET, { recursive: true, force: true });
    try {
      fs.renameSync(generated, TARGET);
    } catch (e) {
      if (stampOf(TARGET) !== stamp) throw e;
    }
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
