import type { BankCheck, BankState } from './bank-check';

/** What the run did, as counted by the client. */
export interface TransferCounts {
  planned: number;
  done: number;
  committed: number;
  aborted: number;
  /** Aborts of transfers made to fail on purpose. */
  overdraftsAborted: number;
  failed: number;
  firstFailure?: string;
  elapsedMs: number;
  concurrency: number;
}

// Beyond this many accounts per bank only the totals are printed.
const MAX_ACCOUNT_ROWS = 20;

/** The one-line progress of the run. */
export function progressLine(c: TransferCounts): string {
  const rate = c.elapsedMs > 0 ? (c.done * 1000) / c.elapsedMs : 0;
  return `transfers ${c.done}/${c.planned}  committed ${c.committed}  aborted ${c.aborted}  failed ${c.failed}  (${rate.toFixed(1)}/s)`;
}

/** The final report: what happened, the balances of both banks, and the check. Its last line starts with `check: OK` or `check: FAILED`. */
export function demoReport(c: TransferCounts, banks: BankState[], check: BankCheck): string {
  const lines: string[] = [];
  const seconds = c.elapsedMs / 1000;
  lines.push(`${c.done} transfers in ${seconds.toFixed(1)} s (${(c.done / Math.max(seconds, 0.001)).toFixed(1)}/s), ${c.concurrency} at a time:`);
  lines.push(`  committed  ${c.committed}`);
  lines.push(`  aborted    ${c.aborted} (${c.overdraftsAborted} planned overdrafts, ${c.aborted - c.overdraftsAborted} other)`);
  lines.push(`  failed     ${c.failed}${c.firstFailure ? ` (first: ${c.firstFailure})` : ''}`);
  lines.push('', 'final balances:', ...balanceTable(banks), '');

  const mark = (ok: boolean) => (ok ? '  [ok]  ' : '  [FAIL]');
  const sum = banks.map((b) => `${b.bank} ${b.total}`).join(' + ');
  const both = banks.length > 0 ? [...banks[0].txIds].filter((id) => banks.every((b) => b.txIds.has(id))).length : 0;
  lines.push('check:');
  lines.push(`${mark(check.conserved)} money conserved: ${sum} = ${check.total} (opened with ${check.expectedTotal})`);
  lines.push(`${mark(check.halfApplied.length === 0)} every transfer in both banks or in neither: ${both} in both, ${check.halfApplied.length} in one only${sample(check.halfApplied)}`);
  lines.push(`${mark(check.lostCommits.length === 0)} every committed transfer visible in both banks${sample(check.lostCommits)}`);
  lines.push(`${mark(check.visibleAborts.length === 0)} no aborted transfer visible${sample(check.visibleAborts)}`);
  lines.push(`${mark(check.prepared.length === 0)} no prepared transaction left: ${check.prepared.length} left${sample(check.prepared)}`);
  lines.push(`${mark(check.failures === 0)} no unexpected failures: ${check.failures}`);
  lines.push('');
  lines.push(
    check.ok
      ? 'check: OK: money conserved, every transfer atomic, no prepared transaction left'
      : `check: FAILED: ${[
          !check.conserved && 'money not conserved',
          check.halfApplied.length + check.lostCommits.length + check.visibleAborts.length > 0 && 'a transfer is not atomic',
          check.prepared.length > 0 && 'prepared transactions left',
          check.failures > 0 && 'unexpected failures',
        ]
          .filter(Boolean)
          .join(', ')}`,
  );
  return `${lines.join('\n')}\n`;
}

function balanceTable(banks: BankState[]): string[] {
  const rows: string[][] = [['account', ...banks.map((b) => b.bank)]];
  const accounts = Math.max(0, ...banks.map((b) => b.balances.length));
  if (accounts <= MAX_ACCOUNT_ROWS) {
    for (let i = 0; i < accounts; i += 1) rows.push([String(banks[0]?.balances[i]?.account ?? i + 1), ...banks.map((b) => String(b.balances[i]?.balance ?? '-'))]);
  } else {
    rows.push([`(${accounts} accounts each)`, ...banks.map(() => '')]);
  }
  rows.push(['total', ...banks.map((b) => String(b.total))]);
  const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  return rows.map((r) => `  ${r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col] + 2))).join('')}`);
}

function sample(ids: string[]): string {
  return ids.length === 0 ? '' : ` (e.g. ${ids.slice(0, 3).join(', ')})`;
}
