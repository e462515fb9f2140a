import type { BranchRef, Vote } from './branch-types';
import type { BranchClient } from './postgres';

/** How long a branch's entry outlives its transaction's expiry: repeated coordinator calls within it get the first answer. */
const RETENTION_MS = 10 * 60 * 1000;

/** What this process knows of one branch it enlisted or was called about. */
export interface BranchEntry {
  readonly ref: Readonly<BranchRef>;
  /** The held branch, once its connection was checked out and BEGIN ran. */
  client?: BranchClient;
  /** The vote given (eager PREPARE, or the coordinator's prepare), repeated to a repeated prepare. */
  vote?: Vote;
  /** Set once phase 2 (or a one-phase commit, a rollback, the held timeout) ended the branch here. */
  outcome?: { state: 'committed' | 'rolled-back'; reason: string };
  /** Resolves once the application's work ended (and, in eager mode, its PREPARE). */
  readonly settled: Promise<void>;
  settle(): void;
  /** Rolls an unprepared branch back when its transaction expired (SPEC §6). */
  timer?: NodeJS.Timeout;
  expiresAt: number;
}

/**
 * This process's memory of its branches, and the per-GID queue every
 * operation on a branch runs through: prepare, commit, rollback, status, the
 * held timeout and the self-sweep never run at once on one GID, so a status
 * answer is never read while a COMMIT PREPARED of the same branch is on the
 * wire, and a repeated call sees the first one's result.
 *
 * Losing it (a restart) is safe: every answer then comes from the database
 * (pg_prepared_xacts and the marker), as the direct adapter gives it.
 */
export class BranchBook {
  private readonly entries = new Map<string, BranchEntry>();
  private readonly queues = new Map<string, Promise<unknown>>();

  open(ref: Readonly<BranchRef>, expiresAt: number): BranchEntry {
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => {
      settle = resolve;
    });
    const entry: BranchEntry = { ref, settled, settle, expiresAt };
    this.entries.set(ref.gid, entry);
    return entry;
  }

  get(gid: string): BranchEntry | undefined {
    return this.entries.get(gid);
  }

  /** Runs `fn` after every operation queued before it on `gid` has finished (whatever their outcome). */
  run<T>(gid: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(gid) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.queues.set(gid, tail);
    void tail.then(() => {
      if (this.queues.get(gid) === tail) this.queues.delete(gid);
    });
    return result;
  }

  /** An operation on `gid` is running or queued. */
  busy(gid: string): boolean {
    return this.queues.has(gid);
  }

  /** Forgets branches whose transaction expired long ago and that nothing is working on. */
  forgetOld(now = Date.now()): void {
    for (const [gid, entry] of this.entries) {
      if (now < entry.expiresAt + RETENTION_MS || this.busy(gid) || entry.client?.phase === 'active') continue;
      clearTimeout(entry.timer);
      this.entries.delete(gid);
    }
  }

  /** Every entry's timer stops (close). */
  clearTimers(): void {
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
  }

  get size(): number {
    return this.entries.size;
  }
}
