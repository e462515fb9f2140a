import type { OrphanRollback, OrphanScan, ResolveResult } from '../engine/admin-operations';
import type { RecoveryReport } from '../engine/recovery';
import type { RetryResult } from '../engine/engine-admin';
import type { SettleResult } from '../engine/settle-operation';
import { renderFields, renderTable } from './table';

// Text renderings of the operator actions' results.

/** Transactions a recovery pass has decided or left so far. */
export function recoveryHandled(r: Readonly<RecoveryReport>): number {
  return r.resumedCommit + r.resumedAbort + r.decidedCommit + r.decidedAbort + r.leftForLater;
}

/** `twopc recover`: the pass's counts, and what is left and why. */
export function renderRecovery(r: RecoveryReport, seconds: number): string {
  const rate = seconds > 0 && r.completed > 0 ? ` (${Math.round(r.completed / seconds)}/s)` : '';
  let text = renderFields([
    ['unfinished in the log', String(r.unfinished)],
    ['resumed commit', String(r.resumedCommit)],
    ['resumed abort', String(r.resumedAbort)],
    ['decided abort now', String(r.decidedAbort)],
    ['decided commit now', String(r.decidedCommit)],
    ['finished', `${r.completed} in ${seconds.toFixed(1)} s${rate}`],
    ['phase 2 still retrying', String(r.pending)],
    ['left for an operator', String(r.leftForLater)],
  ]);
  if (r.pending > 0) text += 'some branches have not acknowledged phase 2 yet: a running coordinator keeps retrying; a stopped one resumes at its next start\n';
  if (r.leftForLater > 0) text += '!! transactions were left alone (heuristic hazards, or an only branch whose state is unknown): twopc list --state heuristic\n';
  return text;
}

/** `twopc retry`: whether phase 2 ran and finished. */
export function renderRetry(r: RetryResult): string {
  if (!r.retried) {
    return r.completed ? `${r.txId}: already completed; nothing to retry\n` : `${r.txId}: no decision yet, so no phase 2 to retry (twopc resolve, or recovery decides it)\n`;
  }
  if (r.completed) return `${r.txId}: phase 2 (${r.decision}) finished: every branch acknowledged\n`;
  const hazards = r.hazards > 0 ? `; !! ${r.hazards} branch(es) with a HEURISTIC HAZARD (twopc show ${r.txId})` : '';
  return `${r.txId}: phase 2 (${r.decision}) retried but not finished yet${hazards}\n`;
}

/** `twopc resolve`: who decided (this call, or earlier) and whether every branch followed. */
export function renderResolve(r: ResolveResult): string {
  const who = r.alreadyDecided ? `was already decided ${r.decision.toUpperCase()}` : `decided ${r.decision.toUpperCase()} (operator decision recorded)`;
  const done = r.completed ? 'every branch acknowledged' : r.hazards > 0 ? `!! ${r.hazards} branch(es) with a HEURISTIC HAZARD` : 'phase 2 not finished yet (still retrying)';
  return `${r.txId}: ${who}; ${done}\n`;
}

/** `twopc settle`: how it ended, and what was finished now. */
export function renderSettle(r: SettleResult): string {
  const finished = r.finished > 0 ? `${r.finished} branch(es) without a hazard finished (${r.outcome}); ` : '';
  return `${r.txId}: settled ${r.outcome.toUpperCase()}: ${finished}completed; its ${r.hazards} hazard branch(es) stay on record (twopc history ${r.txId})\n`;
}

/** `twopc orphans`: one line per orphan, with what the log says of its transaction. */
export function renderOrphans(scan: OrphanScan): string {
  let text =
    scan.orphans.length === 0
      ? 'no orphans: no prepared branch of ours without a running transaction\n'
      : renderTable(
          [
            { heading: 'GID', cell: (o: OrphanScan['orphans'][number]) => o.gid },
            { heading: 'PARTICIPANT', cell: (o) => o.participant },
            { heading: 'TRANSACTION', cell: (o) => o.txId },
            { heading: 'PREPARED AT', cell: (o) => o.preparedAt },
            { heading: 'LOG SAYS', cell: (o) => (!o.known ? 'unknown transaction' : o.decision ?? 'undecided') },
          ],
          scan.orphans,
        );
  for (const u of scan.unreachable) text += `!! could not list ${u.participant}: ${u.error}\n`;
  if (scan.orphans.length > 0) text += 'end them with twopc orphans --rollback (through the decision register: a branch of a committed transaction is committed instead)\n';
  return text;
}

/** `twopc orphans --rollback`: what happened to each orphan. */
export function renderOrphanRollback(results: OrphanRollback[]): string {
  if (results.length === 0) return 'no orphans to end\n';
  return renderTable(
    [
      { heading: 'GID', cell: (r: OrphanRollback) => r.gid },
      { heading: 'PARTICIPANT', cell: (r) => r.participant },
      { heading: 'OUTCOME', cell: (r) => r.outcome },
      { heading: 'DETAIL', cell: (r) => r.detail ?? '' },
    ],
    results,
  );
}
