import type { TransactionList } from '../engine/transaction-listing';
import { hazardBranchCount, type TransactionStatus } from '../engine/transaction-status';
import type { HistoryAnswer, HistoryEvent } from '../service/admin-schemas';
import { renderFields, renderTable } from './table';

// Text renderings of transactions for people; `--json` prints the values themselves.

/** `twopc list`: one line per transaction, and a warning line when any has a heuristic hazard. */
export function renderList(list: TransactionList, filter: string | undefined): string {
  if (list.transactions.length === 0) return `no ${filter ? `${filter} ` : ''}transactions (completed ones are not listed: twopc show ID)\n`;
  let text = renderTable(
    [
      { heading: 'ID', cell: (t: TransactionStatus) => t.id },
      { heading: 'STATE', cell: (t) => t.state },
      { heading: 'DECISION', cell: (t) => t.decision ?? '-' },
      { heading: 'CREATED', cell: (t) => t.createdAt },
      { heading: 'BRANCHES', cell: (t) => String(t.branches.length) },
      { heading: 'HAZARDS', cell: (t) => (t.hazards.length > 0 ? `!! ${hazardBranchCount(t.hazards)}` : '-') },
    ],
    list.transactions,
  );
  if (list.truncated) text += `… more transactions match: raise --limit (at most 1000)\n`;
  const hazardous = list.transactions.filter((t) => t.hazards.length > 0).length;
  if (hazardous > 0) text += `!! ${hazardous} transaction(s) with a HEURISTIC HAZARD: an operator must look (twopc show ID)\n`;
  return text;
}

/** `twopc show`: the transaction, its branches, and its hazards set apart so they cannot be missed. */
export function renderShow(t: TransactionStatus): string {
  const fields: Array<[string, string]> = [
    ['id', t.id],
    ['state', t.state],
    ['decision', t.decision ?? 'none yet'],
    ['created', t.createdAt],
    ['expires', t.expiresAt],
  ];
  if (t.reason) fields.push(['abort reason', `${t.reason.cause}${t.reason.participant ? ` (branch ${t.reason.branchId} on ${t.reason.participant})` : ''}: ${t.reason.message}`]);
  if (t.metadata) fields.push(['metadata', JSON.stringify(t.metadata)]);
  let text = renderFields(fields);
  if (t.branches.length > 0) {
    text += '\n' + renderTable(
      [
        { heading: 'BRANCH', cell: (b: TransactionStatus['branches'][number]) => String(b.branchId) },
        { heading: 'PARTICIPANT', cell: (b) => b.participant },
        { heading: 'STATE', cell: (b) => (b.state === 'heuristic-hazard' ? '!! HEURISTIC HAZARD' : b.state) },
        { heading: 'GID', cell: (b) => b.gid },
        { heading: 'URL', cell: (b) => b.url ?? '-' },
      ],
      t.branches,
    );
  }
  if (t.hazards.length > 0) {
    text += `\n!! HEURISTIC HAZARD: ${hazardBranchCount(t.hazards)} branch(es) ended differently from the decision, or their outcome cannot be confirmed.\n`;
    text +=
      t.state === 'completed'
        ? `!! completed since (by phase 2 once the participant could prove the outcome, or settled by an operator: twopc history ${t.id} says which); kept here for the record.\n`
        : `!! twopc will not guess: check each branch in its database, repair by hand, then record what you did: twopc settle ${t.id} --note "…".\n`;
    for (const h of t.hazards) text += `!!   branch ${h.branchId} on ${h.participant} (${h.gid}) at ${h.at}: ${h.detail}\n`;
  }
  return text;
}

/** `twopc history`: every logged event with its time (the audit trail). */
export function renderHistory(h: HistoryAnswer): string {
  if (h.events.length === 0) return `no events logged for ${h.id} (forgotten by compaction)\n`;
  return renderTable(
    [
      { heading: 'AT', cell: (e: HistoryEvent) => e.at },
      { heading: 'EVENT', cell: (e) => (e.type === 'hazard' ? '!! HAZARD' : e.type) },
      { heading: 'DETAIL', cell: (e) => eventDetail(e) },
    ],
    h.events,
  );
}

function eventDetail(e: HistoryEvent): string {
  switch (e.type) {
    case 'begin':
      return `expires ${e.expiresAt}${e.metadata ? `, metadata ${JSON.stringify(e.metadata)}` : ''}`;
    case 'enlist':
      return e.branch ? `branch ${e.branch.branchId} on ${e.branch.participant} (${e.branch.gid})${e.branch.url ? ` at ${e.branch.url}` : ''}` : '';
    case 'decision': {
      const reason = e.reason ? `: ${e.reason.cause}: ${e.reason.message}` : '';
      return `${e.outcome?.toUpperCase()} decided by ${e.source}, ${e.branches?.length ?? 0} branch(es) to finish${reason}`;
    }
    case 'complete':
      // Only a settle's completion names who settled it.
      return e.by !== undefined
        ? `settled by ${e.by}${e.outcome ? ` (${e.outcome})` : ''}: hazard(s) reconciled by hand, every other branch acknowledged`
        : 'every branch acknowledged phase 2';
    case 'hazard':
      return `branch ${e.branchId} on ${e.participant} (${e.gid}): ${e.detail}`;
    case 'action':
      return `operator ${e.by} asked: ${e.action}${e.note === undefined ? '' : `, note ${JSON.stringify(e.note)}`}`;
  }
}
