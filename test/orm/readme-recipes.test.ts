import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { generatePrismaClient } from './prisma-client';

/**
 * The SDK README's ORM recipes are test/orm/recipes, verbatim: each quoted
 * file appears whole under its `<!-- recipe: path -->` marker, with imports
 * of the SDK written as a consumer writes them, and the files type-check as
 * they stand (strict, against the ORMs and the generated Prisma client). The
 * suites in test/orm run them.
 */
const ROOT = path.resolve(__dirname, '../..');
const RECIPES = path.join(__dirname, 'recipes');
const README = path.join(ROOT, 'participant-sdk/README.md');

/** A recipe as the README shows it: the repository's relative SDK imports become the package's entry points. */
function asPublished(source: string): string {
  return source
    .replace(/'(?:\.\.\/)+participant-sdk\/src\/orm\/(\w+)'/g, "'@twopc/participant-sdk/$1'")
    .replace(/'(?:\.\.\/)+participant-sdk\/src'/g, "'@twopc/participant-sdk'");
}

describe('the SDK README recipes', () => {
  it('quote every recipe file whole, with the imports a consumer writes', () => {
    const readme = fs.readFileSync(README, 'utf8');
    const quoted = new Map<string, string>();
    for (const m of readme.matchAll(/<!-- recipe: (test\/orm\/recipes\/[\w.-]+) -->\n```\w+\n([\s\S]*?)```/g)) quoted.set(m[1], m[2]);
    const files = fs.readdirSync(RECIPES).filter((f) => /\.(ts|prisma)$/.test(f)).map((f) => `test/orm/recipes/${f}`).sort();
    expect([...quoted.keys()].sort()).toEqual(files);
    for (const file of files) {
      // Compared one by one, so a mismatch names its file.
      expect({ file, text: quoted.get(file) }).toEqual({ file, text: asPublished(fs.readFileSync(path.join(ROOT, file), 'utf8')) });
    }
  });

  it('type-check as written, the Prisma one against its generated client', () => {
    generatePrismaClient();
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', path.join(RECIPES, 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      throw new Error(`the recipes do not type-check:\n${(e as { stdout?: string }).stdout ?? String(e)}`);
    }
  }, 120_000);
});
