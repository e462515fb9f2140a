import { TwopcError } from '../engine/ports/protocol';
import type { TransactionEngine } from '../engine/transaction-engine';
import type { BranchRef, Participant } from '../engine/ports/participant';
import type { BranchQueryable, BranchQueryResult } from '../../participant-sdk/src/postgres';

/**
 * A connection inside a branch: statements run in the branch's transaction.
 * The SDK's type, so that its ORM adapters (`drizzleBranch(tx.db('orders'))`,
 * Kysely's dialect, Prisma's adapter) take `tx.db(name)` as they take an SDK branch.
 */
export type { BranchQueryable };

/** What a query returns: the part of `pg`'s QueryResult that twopc promises. */
export type QueryResultLike<R = Record<string, unknown>> = BranchQueryResult<R>;

/** A participant that can hold a branch's connection for in-process work (the direct PostgreSQL adapter). */
export interface BranchOpener extends Participant {
  openBranch(branch: BranchRef): Promise<BranchQueryable>;
}

/**
 * The `tx` handed to `coordinator.transaction(async (tx) => …)`. `tx.db(name)`
 * is one branch per database: its first query registers the branch with the
 * engine and opens it; every later query runs in the same branch.
 */
export class TransactionScope {
  private readonly branches = new Map<string, Promise<BranchQueryable>>();
  /** Branches whose opening finished: a statement goes straight to them, without waiting on the opening's promise again. */
  private readonly opened = new Map<string, BranchQueryable>();
  /** One handle per database for the scope's life (an ORM wrapper calls db(name) once; the bench and apps per statement). */
  private readonly handles = new Map<string, BranchQueryable>();
  private closed = false;

  constructor(
    readonly id: string,
    private readonly engine: TransactionEngine,
    private readonly databases: ReadonlyMap<string, BranchOpener>,
  ) {}

  /**
   * The branch on database `name` (as configured in `databases`). Nothing
   * opens until its first statement, so an ORM may be put over a database
   * the work then never touches (it gets no branch).
   */
  db(name: string): BranchQueryable {
    let handle = this.handles.get(name);
    if (handle) return handle;
    if (!this.databases.has(name)) {
      throw new TwopcError('invalid-input', `no database ${JSON.stringify(name)} is configured (have: ${[...this.databases.keys()].join(', ')})`, { field: 'db' });
    }
    handle = {
      query: (text, values) => {
        const branch = this.opened.get(name);
        if (branch) return branch.query(text, values);
        try {
          return this.open(name).then((b) => b.query(text, values));
        } catch (e) {
          return Promise.reject(e);
        }
      },
    };
    this.handles.set(name, handle);
    return handle;
  }

  /**
   * Opens the branches of these databases now, in parallel, instead of at each
   * one's first query (saves a round trip per database after the first when the
   * work touches them one after the other). Errors surface at first use.
   */
  prefetch(names: readonly string[]): void {
    for (const name of names) {
      this.db(name);
      this.open(name).catch(() => undefined);
    }
  }

  /**
   * Ends the scope: no new branch may start once commit begins. Resolves when every open
   * finished; undefined when all of them had already (the usual case: the work used them),
   * so that a commit costs no promise per branch for nothing to wait for.
   */
  seal(): Promise<unknown> | undefined {
    this.closed = true;
    if (this.opened.size === this.branches.size) return undefined;
    return Promise.allSettled(this.branches.values());
  }

  private open(name: string): Promise<BranchQueryable> {
    let branch = this.branches.get(name);
    if (!branch) {
      if (this.closed) throw new TwopcError('state-conflict', `transaction ${this.id} is already committing; no new branch may start`, { txId: this.id });
      branch = this.enlistAndOpen(name);
      this.branches.set(name, branch);
    }
    return branch;
  }

  private async enlistAndOpen(name: string): Promise<BranchQueryable> {
    // Not waiting for the registration's write here: commit waits for it before any PREPARE.
    const info = await this.engine.enlist(this.id, name, { awaitWrite: false });
    const database = this.databases.get(name)!;
    const ref = { ...info, txId: this.id };
    const branch = await database.openBranch(ref);
    // The transaction may have been aborted (a timeout) while the connection was being opened:
    // that abort's rollback found nothing held yet, so this branch is ended here, or it would
    // hold its connection and row locks with nobody left to end it.
    if (!this.engine.acceptsWork(this.id)) {
      await database.rollback(ref).catch(() => undefined);
      throw new TwopcError('state-conflict', `transaction ${this.id} ended while its branch on ${name} was opening`, { txId: this.id });
    }
    this.opened.set(name, branch);
    return branch;
  }
}
