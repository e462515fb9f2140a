import path from 'node:path';
import type { BranchQueryable } from '../../participant-sdk/src';

/** The ORMs a branch's work can be written in, each with its recipe in recipes/ (the SDK README quotes them). */
export const ORMS = ['pg', 'drizzle', 'kysely', 'prisma'] as const;
export type Orm = (typeof ORMS)[number];

/** What each recipe exports: adds `delta` to an account's balance and books it in `entries`. */
export type Book = (branch: BranchQueryable, txId: string, account: number, delta: number) => Promise<number>;

export function isOrm(name: string | undefined): name is Orm {
  return (ORMS as readonly string[]).includes(name ?? '');
}

/**
 * The recipe of `orm`, loaded at run time: the Prisma one imports its
 * generated client, which exists only once `generatePrismaClient()` ran (so
 * no file tsc checks imports it; ts-jest checks it when it loads it).
 */
export function loadBook(orm: Orm): Book {
  return (require(path.join(__dirname, 'recipes', orm)) as { book: Book }).book;
}
