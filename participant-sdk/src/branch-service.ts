import type { BranchBook, BranchEntry } from './branch-book';
import type { BranchRef, ParticipantBranchState, Vote } from './branch-types';
import { TransactionAbortedError, isTwopcError } from './errors';
import type { PostgresParticipant } from './postgres';

/**
 * The participant side of the wire protocol (SPEC §6), without HTTP: what the
 * router's handlers call. Every operation is idempotent and runs through the
 * branch book's per-GID queue.
 */
export class BranchService {
  constructor(
    private readonly postgres: PostgresParticipant,
    private readonly book: BranchBook,
  ) {}

  /**
   * The branch's vote. Waits for the application's work to end first (and,
   * in eager mode, for the PREPARE it triggers), so the vote covers all of it;
   * if the work never ends, the coordinator's timeout aborts and the rollback
   * cancels it. A repeated call gets the first vote, except that a branch
   * rolled back since (by the coordinator, the self-sweep, or anyone on the
   * database) gets no: a yes for it would let its transaction commit
   * everywhere else.
   */
  async prepare(ref: BranchRef): Promise<Vote> {
    const entry = this.book.get(ref.gid);
    if (entry) await entry.settled;
    return this.book.run(ref.gid, async () => {
      if (entry?.outcome?.state === 'rolled-back') return noVote(ref, entry.vote, entry.outcome.reason);
      if (entry?.vote?.vote === 'yes' && !entry.outcome) return this.confirmYes(ref, entry);
      if (entry?.vote) return entry.vote;
      if (entry?.outcome) return { vote: 'no', reason: `branch ${ref.gid} was already ${entry.outcome.state}: ${entry.outcome.reason}` };
      const vote = await this.postgres.prepare(ref);
      if (entry) recordVote(entry, vote);
      return vote;
    });
  }

  /**
   * Phase 2 commit, or (`onePhase`) the whole commit of a transaction's only
   * branch. Throws TransactionAbortedError when a one-phase commit did not
   * commit; `outcome-unknown` when that cannot be told yet (the coordinator retries).
   */
  async commit(ref: BranchRef, onePhase: boolean): Promise<void> {
    const entry = this.book.get(ref.gid);
    if (onePhase && entry) await entry.settled;
    return this.book.run(ref.gid, async () => {
      if (entry?.outcome?.state === 'committed') return;
      try {
        if (onePhase) await this.commitOnePhase(ref, entry);
        else await this.postgres.commit(ref);
      } catch (e) {
        if (e instanceof TransactionAbortedError && entry) markRolledBack(entry, e.reason.message);
        throw e;
      }
      if (entry) entry.outcome = { state: 'committed', reason: onePhase ? 'one-phase commit' : 'commit decision' };
    });
  }

  /**
   * Rolls the branch back, whatever it is (held, prepared, unknown), here or
   * in another process (see PostgresParticipant.rollback). Cancels work still
   * running. Its vote becomes no, whatever it was.
   */
  async rollback(ref: BranchRef, reason = 'the coordinator rolled the branch back'): Promise<void> {
    return this.book.run(ref.gid, async () => {
      const entry = this.book.get(ref.gid);
      const voted = entry?.vote;
      if (entry) {
        // Set before the first await: an enlist whose BEGIN completes while
        // this runs sees it and ends its branch at once (see enlistment.ts).
        markRolledBack(entry, reason);
        clearTimeout(entry.timer);
      }
      try {
        await this.postgres.rollback(ref);
      } catch (e) {
        // Its marker is visible: it committed (a hazard the caller reports), it was not rolled back.
        if (entry && isTwopcError(e, 'heuristic-hazard')) {
          entry.outcome = { state: 'committed', reason: 'committed, although a rollback was asked' };
          entry.vote = voted;
        }
        throw e;
      }
    });
  }

  /** `active` while held here; otherwise what the database says (prepared, committed by its marker, or unknown). */
  async status(ref: BranchRef): Promise<ParticipantBranchState> {
    return this.book.run(ref.gid, async () => {
      // A read-only branch committed here leaves no marker; this process still knows.
      if (committedHere(this.book.get(ref.gid))) return 'committed';
      return this.postgres.status(ref);
    });
  }

  /**
   * Like `status`, reading only: a branch held by another process is not
   * ended (it reads `unknown`), one held here reads `active`.
   */
  async recordedState(ref: BranchRef): Promise<ParticipantBranchState> {
    return this.book.run(ref.gid, async () => {
      const entry = this.book.get(ref.gid);
      if (committedHere(entry)) return 'committed';
      if (entry?.client?.phase === 'active') return 'active';
      return this.postgres.recordedState(ref);
    });
  }

  private async commitOnePhase(ref: BranchRef, entry: BranchEntry | undefined): Promise<void> {
    const vote = entry?.vote;
    if (vote?.vote === 'read-only') return; // committed locally when it voted
    if (vote?.vote === 'no') throw aborted(ref, vote.reason, vote.sqlState);
    // Ended here already (an earlier one-phase attempt failed, a rollback, the held timeout): the same answer again.
    if (entry?.outcome?.state === 'rolled-back') throw aborted(ref, entry.outcome.reason);
    // Prepared already (eager mode): the coordinator's one-phase commit is its decision.
    if (vote?.vote === 'yes') return this.postgres.commit(ref);
    if (entry?.client?.phase === 'active') return this.postgres.commit(ref, { onePhase: true });
    // Not known here (this process restarted): an eager branch may be
    // prepared; otherwise the marker tells whether an earlier attempt committed.
    if ((await this.postgres.status(ref)) === 'prepared') return this.postgres.commit(ref);
    return this.postgres.commit(ref, { onePhase: true });
  }

  /**
   * A yes vote given before is repeated only while the database still holds
   * the branch prepared (or it committed since): anything else (another
   * replica behind the same publicUrl, an operator, or `twopc orphans
   * --rollback` ended it on the database) makes it a no from now on.
   */
  private async confirmYes(ref: BranchRef, entry: BranchEntry): Promise<Vote> {
    const state = await this.postgres.recordedState(ref);
    if (state === 'prepared') return { vote: 'yes' };
    if (state === 'committed') {
      entry.outcome = { state: 'committed', reason: 'committed (seen by a repeated prepare)' };
      return { vote: 'yes' };
    }
    markRolledBack(entry, `branch ${ref.gid} is no longer prepared: it was rolled back outside this process`);
    return noVote(ref, entry.vote, entry.outcome!.reason);
  }
}

/** The branch ended rolled back here (unless it is known committed): its vote is no from now on. */
function markRolledBack(entry: BranchEntry, reason: string): void {
  entry.outcome ??= { state: 'rolled-back', reason };
  if (entry.outcome.state === 'rolled-back' && entry.vote?.vote !== 'no') entry.vote = { vote: 'no', reason: `branch ${entry.ref.gid} was rolled back: ${entry.outcome.reason}` };
}

function noVote(ref: BranchRef, vote: Vote | undefined, reason: string): Vote {
  return vote?.vote === 'no' ? vote : { vote: 'no', reason: `branch ${ref.gid} was rolled back: ${reason}` };
}

export function recordVote(entry: BranchEntry, vote: Vote): void {
  entry.vote = vote;
  // Voted: no timer may end it now. A "no" already ended it.
  clearTimeout(entry.timer);
  if (vote.vote === 'no') entry.outcome ??= { state: 'rolled-back', reason: vote.reason };
  if (vote.vote === 'read-only') entry.outcome ??= { state: 'committed', reason: 'read-only' };
}

function aborted(ref: BranchRef, reason: string, sqlState?: string): TransactionAbortedError {
  return new TransactionAbortedError(ref.txId, { cause: 'vote-no', message: reason, branchId: ref.branchId, participant: ref.participant, ...(sqlState ? { sqlState } : {}) });
}

/** Committed by this process, or read-only (which leaves no marker): known without asking the database. */
function committedHere(entry: BranchEntry | undefined): boolean {
  return entry?.outcome?.state === 'committed' || entry?.vote?.vote === 'read-only';
}
