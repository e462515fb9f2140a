// Orphans and the log: prepared branches no transaction owns (scan, roll back), the log's check and compaction,
// and a recovery pass. Reads are open to viewers; the actions to admins.
import { api } from './api.js';
import { fill, h, table, time } from './dom.js';
import { actionButton } from './confirm.js';

export function maintenancePage({ main, operator }) {
  document.title = 'Orphans and log · twopc console';
  const orphans = h('div', { id: 'orphans' });
  const verify = h('div', { id: 'verify' });
  const status = h('div', { id: 'action-status', 'aria-live': 'polite' });
  const admin = operator.role === 'admin';
  const scan = async () => {
    fill(orphans, h('p', { class: 'muted' }, 'Scanning…'));
    try {
      const r = await api.get('/v1/admin/orphans');
      fill(
        orphans,
        table('Prepared branches of our GID prefix that no transaction running here owns', ['participant', 'GID', 'transaction', 'prepared', 'its decision'], r.orphans, (o) => [
          o.participant,
          h('span', { class: 'mono' }, o.gid),
          o.known ? h('a', { href: `#/tx/${o.txId}`, class: 'mono' }, o.txId) : h('span', { class: 'mono' }, `${o.txId} (not in the log)`),
          time(o.preparedAt),
          o.decision ?? 'none',
        ]),
        r.unreachable.length ? h('p', { class: 'error' }, `Could not list: ${r.unreachable.map((u) => `${u.participant} (${u.error})`).join('; ')}`) : null,
      );
    } catch (e) {
      fill(orphans, h('p', { class: 'error', role: 'alert' }, `Scan failed: ${e.message}`));
    }
  };
  const runVerify = async () => {
    fill(verify, h('p', { class: 'muted' }, 'Checking…'));
    try {
      const r = await api.get('/v1/admin/log/verify');
      fill(
        verify,
        h('p', {}, r.ok ? `OK: ${r.records} records in ${r.files.length} file(s), nothing damaged.` : `${r.damaged.length} damaged range(s); a start ${r.opens ? 'would cut a torn tail and open' : 'would refuse'}.`),
        r.damaged.length ? table('Damaged ranges', ['file', 'offset', 'bytes', 'verdict', 'reason'], r.damaged, (d) => [d.file, String(d.offset), String(d.bytes), d.verdict, d.reason]) : null,
      );
    } catch (e) {
      fill(verify, h('p', { class: 'error', role: 'alert' }, `Verify: ${e.message}`));
    }
  };
  fill(
    main,
    h('h1', {}, 'Orphans and log'),
    status,
    h(
      'section',
      { 'aria-labelledby': 'h-orphans' },
      h('h2', { id: 'h-orphans' }, 'Orphaned prepared branches'),
      h('div', { class: 'buttons' }, h('button', { type: 'button', id: 'orphan-scan', onclick: scan }, 'Scan again'),
        admin ? actionButton({
          label: 'Roll back orphans',
          id: 'orphan-rollback',
          status,
          path: '/v1/admin/orphans/rollback',
          confirm: {
            title: 'End every orphaned prepared branch?',
            happens: 'Each orphan is ended through the decision register: an undecided transaction is decided ABORT and its branches rolled back; a branch of a transaction decided COMMIT is committed instead (rolling it back would contradict the decision).',
            irreversible: 'rolled-back branches lose their work for good, and the ABORT decisions recorded are final. Your name and the time are recorded in each transaction\'s history.',
            confirmLabel: 'Roll back orphans',
          },
          done: (a) => `Done: ${a.results.filter((r) => r.outcome === 'rolled-back').length} rolled back, ${a.results.filter((r) => r.outcome === 'committed').length} committed, ${a.results.filter((r) => r.outcome === 'left').length} left.`,
          after: scan,
        }) : null),
      orphans,
    ),
    h(
      'section',
      { 'aria-labelledby': 'h-log' },
      h('h2', { id: 'h-log' }, 'Decision log'),
      h('div', { class: 'buttons' }, h('button', { type: 'button', id: 'log-verify', onclick: runVerify }, 'Verify the log'),
        admin ? actionButton({
          label: 'Compact the log',
          id: 'log-compact',
          status,
          path: '/v1/admin/log/compact',
          confirm: {
            title: 'Compact the decision log?',
            happens: 'Completed transactions past their retention period are forgotten and their space reclaimed. Unfinished transactions are never touched.',
            irreversible: 'the history of forgotten transactions is gone: looking them up by id finds nothing afterwards.',
            confirmLabel: 'Compact',
          },
          done: (a) => `Compacted: ${a.forgotten} forgotten, ${a.kept} kept; ${a.bytesBefore} → ${a.bytesAfter} bytes.`,
        }) : null,
        admin ? actionButton({
          label: 'Run recovery now',
          id: 'recover',
          status,
          path: '/v1/admin/recover',
          confirm: {
            title: 'Run one recovery pass now?',
            happens: 'Every unfinished transaction of the log that this instance owns is finished: decided ones get phase 2 now; undecided ones that are not running here are decided ABORT (a lone branch is asked first whether it committed in one phase).',
            irreversible: 'the ABORT decisions recorded are final and their branches are rolled back.',
            confirmLabel: 'Run recovery',
          },
          done: (a) => `Recovery: ${a.unfinished} unfinished, ${a.decidedAbort} decided abort, ${a.completed} completed, ${a.pending} still retrying, ${a.leftForLater} left for an operator.`,
        }) : null),
      verify,
    ),
  );
  scan();
  return () => {};
}
