import type { BranchRef, Participant } from '../coordinator/engine/ports/participant';

/**
 * `commit-one-before-decision` (the chaos negative control) as a participant
 * wrapper: the first yes vote of each transaction gets COMMIT PREPARED at
 * once, before the other votes are in and before any decision is written. A
 * transaction another branch votes no on then ends half committed (the abort
 * finds the branch committed: a heuristic hazard); a crash before the
 * decision does the same. The checker must catch it.
 *
 * @example
 * const extensions = { wrapParticipant: commitOneBeforeDecision() };
 */
export function commitOneBeforeDecision(): (participant: Participant) => Participant {
  // Shared by every wrapped participant: "first" is per transaction, across participants.
  const committed = new Set<string>();
  return (p) => ({
    name: p.name,
    close: () => p.close(),
    commit: (branch, options) => p.commit(branch, options),
    rollback: (branch) => p.rollback(branch),
    ...(p.listPrepared ? { listPrepared: (prefix: string) => p.listPrepared!(prefix) } : {}),
    ...(p.status ? { status: (branch: BranchRef) => p.status!(branch) } : {}),
    async prepare(branch) {
      const vote = await p.prepare(branch);
      if (vote.vote === 'yes' && !committed.has(branch.txId)) {
        committed.add(branch.txId);
        await p.commit(branch).catch(() => undefined);
      }
      return vote;
    },
  });
}
