import { createRequire } from 'node:module';
import { PrismaPg } from '@prisma/adapter-pg';
import type * as Pg from 'pg';
import { TwopcError } from '../errors';
import type { BranchQueryable } from '../postgres/branch-client';
import type { PostgresQueryConfig } from '../postgres/postgres-pool';
import { refusedInBranch } from './refused';

// PrismaPg adopts a pool only if it is `instanceof` the pg.Pool that *it*
// loads; anything else it takes for a pool config, and opens connections of
// its own, outside the branch. So the branch's pool extends that very class.
const pgOfAdapter = createRequire(require.resolve('@prisma/adapter-pg'))('pg') as typeof Pg;

type PrismaPgOptions = NonNullable<ConstructorParameters<typeof PrismaPg>[1]>;

/** What `prismaBranchAdapter` passes on to `@prisma/adapter-pg`. */
export type PrismaBranchOptions = Pick<PrismaPgOptions, 'schema' | 'userDefinedTypeParser'>;

type Query = string | PostgresQueryConfig;
const textOf = (query: Query): string => (typeof query === 'string' ? query : query.text);

/**
 * The branch as a pg pool of one connection: one Prisma call at a time, as a
 * pool of `max: 1` would do, so that a statement of another call never lands
 * inside a Prisma transaction's savepoint (and is undone with it).
 */
class BranchPool extends pgOfAdapter.Pool {
  private turn: Promise<void> = Promise.resolve();
  private savepoints = 0;

  constructor(private readonly branch: BranchQueryable) {
    // Never used to connect: query and connect below are the branch's.
    super({ max: 1 });
  }

  // `any`: pg's overloads (callbacks, submittables) are ones PrismaPg never uses.
  override query(query: Query, values?: any): any {
    return this.take().then(async (done) => {
      try {
        return await this.branch.query(query, values);
      } finally {
        done();
      }
    });
  }

  // Prisma starts a transaction of its own for nested writes and `$transaction`: on a pool
  // connection it sends BEGIN, then COMMIT or ROLLBACK. Inside a branch that is a savepoint.
  override connect(): any {
    return this.take().then((done) => new SavepointConnection(this.branch, `twopc_prisma_${++this.savepoints}`, done));
  }

  private async take(): Promise<() => void> {
    const previous = this.turn;
    let done!: () => void;
    this.turn = new Promise((resolve) => (done = resolve));
    await previous;
    return done;
  }
}

class SavepointConnection {
  private released = false;

  constructor(
    private readonly branch: BranchQueryable,
    private readonly savepoint: string,
    private readonly done: () => void,
  ) {}

  async query(query: Query, values?: readonly unknown[]): Promise<unknown> {
    switch (textOf(query).trim().toUpperCase()) {
      case 'BEGIN':
        return this.branch.query(`SAVEPOINT ${this.savepoint}`);
      case 'COMMIT':
        return this.branch.query(`RELEASE SAVEPOINT ${this.savepoint}`);
      case 'ROLLBACK':
        return this.undo();
    }
    if (/^\s*SET\s+TRANSACTION\b/i.test(textOf(query))) {
      // `$transaction(fn, { isolationLevel })`: after the savepoint PostgreSQL would fail it
      // (25001), and with it the whole branch. The branch's level is its BEGIN's.
      await this.undo();
      throw refusedInBranch('Prisma', '$transaction({ isolationLevel })');
    }
    return this.branch.query(query, values);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.done();
  }

  on(): this {
    return this;
  }

  removeListener(): this {
    return this;
  }

  private async undo(): Promise<unknown> {
    await this.branch.query(`ROLLBACK TO SAVEPOINT ${this.savepoint}`);
    return this.branch.query(`RELEASE SAVEPOINT ${this.savepoint}`);
  }
}

/** PrismaPg over a branch pool; refuses a pool that PrismaPg did not adopt, before any query. */
class BranchPrismaPg extends PrismaPg {
  constructor(private readonly pool: BranchPool, options: PrismaBranchOptions) {
    super(pool, options);
  }

  override async connect(): Promise<Awaited<ReturnType<PrismaPg['connect']>>> {
    const adapter = await super.connect();
    if ((adapter.underlyingDriver() as unknown) !== this.pool) {
      await adapter.dispose();
      throw new TwopcError('invalid-config', '@prisma/adapter-pg did not take the branch as its pool (two copies of pg?): its queries would run outside the branch', { field: 'adapter' });
    }
    return adapter;
  }

  override async connectToShadowDb(): Promise<never> {
    throw refusedInBranch('Prisma', 'migrate (shadow database)');
  }
}

/**
 * A Prisma 7 driver adapter (`@prisma/adapter-pg`) over one branch:
 * `new PrismaClient({ adapter: prismaBranchAdapter(branch) })`, one
 * PrismaClient per branch (cheap after the first: no connection, no round
 * trip), `$disconnect()` when the work is done (the branch stays open).
 * Prisma's own transactions (nested writes, `$transaction`) become savepoints
 * of the branch; `$transaction` with an `isolationLevel` is refused
 * (`invalid-input`). A failed statement throws Prisma's
 * `PrismaClientKnownRequestError` and fails the branch (it votes no), unless
 * it ran in one of Prisma's own transactions: that one is undone to its
 * savepoint, and the branch goes on.
 *
 * One shared PrismaClient cannot serve several branches: Prisma batches
 * requests and does not keep the caller's async context down to the adapter.
 *
 * @example
 * import { prismaBranchAdapter } from '@twopc/participant-sdk/prisma';
 * await orders.enlist(txId, async (branch) => {
 *   const prisma = new PrismaClient({ adapter: prismaBranchAdapter(branch) });
 *   try {
 *     await prisma.account.update({ where: { id }, data: { balance: { decrement: amount } } });
 *   } finally {
 *     await prisma.$disconnect();
 *   }
 * });
 */
export function prismaBranchAdapter(branch: BranchQueryable, options: PrismaBranchOptions = {}): PrismaPg {
  return new BranchPrismaPg(new BranchPool(branch), options);
}
