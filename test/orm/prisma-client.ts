import path from 'node:path';
import { generatePrismaClient as generate } from '../../harness/prisma-generate';

/**
 * Generates the Prisma client of recipes/schema.prisma into
 * recipes/generated/prisma (git-ignored; recipes/prisma.ts imports it),
 * offline, unless it is already there (see harness/prisma-generate.ts).
 */
export function generatePrismaClient(): void {
  generate(path.join(__dirname, 'recipes', 'schema.prisma'));
}
