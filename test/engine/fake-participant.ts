import { TransactionAbortedError, TwopcError } from '../../coordinator/engine/ports/protocol';
import type { Vote } from '../../coordinator/engine/ports/types';
import type { BranchRef, Participant, ParticipantBranchState, PreparedBranch } from '../../coordinator/engine/ports/participant';

type Behaviour<T> = (branch: BranchRef) => Promise<T> | T;

/**
 * A scripted participant that keeps the branch states a real one would, so
 * the engine's calls can be asserted: what was prepared, committed, rolled back.
 */
export class FakeParticipant implements Participant {
  readonly calls: Array<{ op: string; gid: string; onePhase?: boolean }> = [];
  readonly prepared = new Map<string, number>();
  readonly committed = new Set<string>();
  readonly rolledBack = new Set<string>();
  onPrepare: Behaviour<Vote> = () => ({ vote: 'yes' });
  onCommit: Behaviour<void> = () => undefined;
  onRollback: Behaviour<void> = () => undefined;

  constructor(readonly name: string) {}

  async prepare(branch: BranchRef): Promise<Vote> {
    this.calls.push({ op: 'prepare', gid: branch.gid });
    const vote = await this.onPrepare(branch);
    if (vote.vote === 'yes') this.prepared.set(branch.gid, Date.now());
    if (vote.vote === 'read-only') this.committed.add(branch.gid);
    return vote;
  }

  async commit(branch: BranchRef, options: { onePhase?: boolean } = {}): Promise<void> {
    this.calls.push({ op: 'commit', gid: branch.gid, onePhase: options.onePhase });
    await this.onCommit(branch);
    if (options.onePhase) {
      if (this.rolledBack.has(branch.gid)) throw new TransactionAbortedError(branch.txId, { cause: 'vote-no', message: 'rolled back' });
    } else if (!this.prepared.has(branch.gid) && !this.committed.has(branch.gid)) {
      throw new TwopcError('heuristic-hazard', `fake: ${branch.gid} is not prepared and was not committed`);
    }
    this.prepared.delete(branch.gid);
    this.committed.add(branch.gid);
  }

  async rollback(branch: BranchRef): Promise<void> {
    this.calls.push({ op: 'rollback', gid: branch.gid });
    await this.onRollback(branch);
    if (this.committed.has(branch.gid)) throw new TwopcError('heuristic-hazard', `fake: ${branch.gid} was committed`);
    this.prepared.delete(branch.gid);
    this.rolledBack.add(branch.gid);
  }

  async listPrepared(prefix: string): Promise<PreparedBranch[]> {
    return [...this.prepared].filter(([gid]) => gid.startsWith(`${prefix}_`)).map(([gid, preparedAt]) => ({ gid, preparedAt }));
  }

  async status(branch: BranchRef): Promise<ParticipantBranchState> {
    if (this.prepared.has(branch.gid)) return 'prepared';
    if (this.committed.has(branch.gid)) return 'committed';
    if (this.rolledBack.has(branch.gid)) return 'rolled-back';
    return 'unknown';
  }

  async close(): Promise<void> {}

  ops(op: string): string[] {
    return this.calls.filter((c) => c.op === op).map((c) => c.gid);
  }
}
