// One transaction: its branches, its history as a timeline (with who decided and every operator action), its
// abort reason, metadata and raw JSON, and, for an admin, the actions on it. Refreshed every 3 s.
import { api, ApiError } from './api.js';
import { age, ageOf, badge, fill, h, table, time } from './dom.js';
import { actionButton } from './confirm.js';
import { poll } from './poll.js';

export function detailPage({ main, operator }, id) {
  document.title = `Transaction ${id} · twopc console`;
  const body = h('div', { id: 'detail' });
  const status = h('div', { id: 'action-status', 'aria-live': 'polite' });
  const actions = h('section', { id: 'actions', 'aria-labelledby': 'h-actions' });
  fill(main, h('p', {}, h('a', { href: '#/transactions' }, '← Transactions')), h('h1', {}, 'Transaction ', h('span', { class: 'mono' }, id)), actions, status, body);
  let shownFor = '';

  const refresh = async () => {
    let tx;
    let history;
    let phaseTwo;
    try {
      const base = `/v1/admin/transactions/${encodeURIComponent(id)}`;
      [tx, history, phaseTwo] = await Promise.all([api.get(base), api.get(`${base}/history`), api.get(`${base}/phase-two`)]);
    } catch (e) {
      fill(body, h('p', { class: 'error', role: 'alert' }, e instanceof ApiError && e.status === 404 ? `No transaction ${id}: ${e.message}` : `Could not load it: ${e.message}`));
      return;
    }
    // The buttons are rebuilt only when what they offer changes, so a click in progress is never lost.
    const offer = `${tx.state}|${tx.decision}|${tx.hazards.length}`;
    if (offer !== shownFor) {
      shownFor = offer;
      fill(actions, operator.role === 'admin' ? actionsView(tx, status, refresh) : h('p', { class: 'muted', id: 'viewer-note' }, `Signed in as a viewer (${operator.name}): actions need an admin token.`));
    }
    // Refreshing must not close what the operator opened.
    const rawOpen = body.querySelector('details.raw')?.open ?? false;
    fill(body, summary(tx), branches(tx), phaseTwoView(phaseTwo), timeline(history.events), rawJson(tx, history, phaseTwo, rawOpen));
  };
  return poll(refresh, 3000);
}

function summary(tx) {
  const rows = [
    ['State', badge(tx.state)],
    ['Decision', tx.decision ?? 'none recorded'],
    ['Begun', [time(tx.createdAt), ` (${ageOf(tx.createdAt)} ago)`]],
    ['Expires', time(tx.expiresAt)],
    ['Abort reason', tx.reason ? `${tx.reason.cause}: ${tx.reason.message}${tx.reason.participant ? ` (${tx.reason.participant})` : ''}` : '–'],
    ['Heuristic hazards', tx.hazards.length === 0 ? '0' : tx.hazards.map((z) => h('div', { class: 'error' }, `branch ${z.branchId} on ${z.participant}: ${z.detail}`))],
    ['Metadata', tx.metadata ? h('pre', {}, JSON.stringify(tx.metadata, null, 2)) : '–'],
  ];
  return h('section', { 'aria-labelledby': 'h-summary' }, h('h2', { id: 'h-summary' }, 'Summary'), h('dl', { class: 'summary' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
}

function branches(tx) {
  return h(
    'section',
    { 'aria-labelledby': 'h-branches' },
    h('h2', { id: 'h-branches' }, 'Branches'),
    table('Branches and their states', ['branch', 'participant', 'state', 'GID', 'url'], tx.branches, (b) => [String(b.branchId), b.participant, badge(b.state), h('span', { class: 'mono' }, b.gid), b.url ?? '–']),
  );
}

const ACTION_TEXT = { retry: 'retry phase 2 now', 'resolve-commit': 'resolve: commit', 'resolve-abort': 'resolve: abort', 'orphan-rollback': 'orphan rollback', settle: 'settle it (reconciled by hand)' };

/** What the decision proves of the votes: a commit needs every branch's yes (or read-only); an abort names a no. */
function votes(decision, events) {
  const enlisted = events.filter((x) => x.type === 'enlist').length;
  if (decision.outcome === 'commit') return decision.source === 'engine' ? `every branch voted yes (${decision.branches.length}) or read-only (${Math.max(0, enlisted - decision.branches.length)})` : 'every branch found prepared';
  const r = decision.reason;
  if (r?.cause === 'vote-no') return `branch ${r.branchId ?? '?'}${r.participant ? ` on ${r.participant}` : ''} voted no`;
  return `before every branch voted yes (${r?.cause ?? 'presumed abort'})`;
}

/** What one history event says, in words. */
function eventText(e, events, i) {
  switch (e.type) {
    case 'begin':
      return [h('strong', {}, 'Begun'), `, expires `, time(e.expiresAt)];
    case 'enlist':
      return [h('strong', {}, 'Enlisted'), ` branch ${e.branch.branchId} on ${e.branch.participant}`, e.branch.url ? ` (${e.branch.url})` : ''];
    case 'decision': {
      // An operator's decision follows the action record that asked for it: name the operator.
      const asked = e.source === 'admin' ? events.slice(0, i).reverse().find((x) => x.type === 'action' && x.action !== 'retry') : undefined;
      const who = e.source === 'admin' ? `an operator${asked ? ` (${asked.by})` : ''}` : e.source;
      return [h('strong', {}, `Decided ${e.outcome.toUpperCase()}`), ` by ${who}; ${votes(e, events)}; ${e.branches.length} branch(es) to finish`, e.reason ? `; reason ${e.reason.cause}: ${e.reason.message}` : ''];
    }
    case 'complete':
      // Only a settle's completion names who settled it.
      if (e.by !== undefined) {
        return [h('strong', {}, 'Completed'), `: settled by ${e.by} (hazards reconciled by hand; every other branch acknowledged)`, e.outcome ? ` (${e.outcome})` : ''];
      }
      return [h('strong', {}, 'Completed'), ': every branch acknowledged phase 2', e.outcome ? ` (${e.outcome})` : ''];
    case 'hazard':
      return [h('strong', { class: 'error' }, 'Heuristic hazard'), ` on branch ${e.branchId} (${e.participant}): ${e.detail}`];
    case 'action':
      return [h('strong', {}, 'Operator action'), `: ${e.by} asked to ${ACTION_TEXT[e.action] ?? e.action}`, e.note ? [': ', h('q', { class: 'note' }, e.note)] : ''];
    default:
      return [h('strong', {}, e.type)];
  }
}

function timeline(events) {
  return h(
    'section',
    { 'aria-labelledby': 'h-timeline' },
    h('h2', { id: 'h-timeline' }, 'History'),
    events.length === 0
      ? h('p', { class: 'muted' }, 'No records (forgotten by compaction, or never logged).')
      : h('ol', { class: 'timeline', id: 'timeline' }, events.map((e, i) => h('li', { class: `ev ev-${e.type}`, 'data-type': e.type }, time(e.at), ' ', eventText(e, events, i)))),
    h('p', { class: 'muted' }, 'Every record of the decision log for it. Phase-2 attempts are not records: the ones not acknowledged are under "Phase 2 in progress" while it runs, and counted in twopc_phase_two_retries_total.'),
  );
}

function rawJson(tx, history, phaseTwo, open) {
  return h('details', { class: 'raw', open }, h('summary', {}, 'Raw JSON'), h('pre', { id: 'raw', tabindex: 0, 'aria-label': 'raw JSON of the transaction, its history and phase 2' }, JSON.stringify({ transaction: tx, history, phaseTwo }, null, 2)));
}

/** The drive in progress: each branch that did not acknowledge, why, and when the next attempt is due. */
function phaseTwoView(p) {
  if (!p.driving && p.branches.length === 0) return null;
  const next = (b) => (b.acknowledgedAt ? ['acknowledged ', time(b.acknowledgedAt)] : b.nextAttemptAt ? [time(b.nextAttemptAt), ` (in ${age(Date.parse(b.nextAttemptAt) - Date.now())})`] : '–');
  return h(
    'section',
    { 'aria-labelledby': 'h-phase-two' },
    h('h2', { id: 'h-phase-two' }, 'Phase 2 in progress'),
    p.branches.length === 0
      ? h('p', {}, 'Running on this instance; no attempt has failed.')
      : table('Attempts not acknowledged (kept in memory while phase 2 runs; Retry now brings the next one forward)', ['branch', 'participant', 'failed attempts', 'last error', 'last attempt', 'next attempt'], p.branches, (b) => [
          String(b.branchId),
          b.participant,
          String(b.failedAttempts),
          h('span', { class: 'error' }, b.lastError),
          time(b.lastAttemptAt),
          next(b),
        ]),
  );
}

function actionsView(tx, status, refresh) {
  if (tx.state === 'completed') return [h('h2', { id: 'h-actions' }, 'Actions'), h('p', { class: 'muted' }, 'Completed: nothing left to do.')];
  const base = `/v1/admin/transactions/${encodeURIComponent(tx.id)}`;
  const recorded = tx.decision ? `The recorded decision is ${tx.decision.toUpperCase()}.` : 'No decision is recorded yet.';
  const resolve = (outcome) =>
    actionButton({
      label: `Resolve: ${outcome}`,
      id: `resolve-${outcome}`,
      status,
      path: `${base}/resolve`,
      body: { outcome },
      confirm: {
        title: `Resolve ${tx.id} as ${outcome.toUpperCase()}?`,
        happens: `${recorded} ${outcome.toUpperCase()} is asked of the decision register (the same one every other decision goes through) and then applied to every branch${outcome === 'commit' ? '; with no decision yet, it is recorded only if every branch is prepared' : ''}. If the register already holds the other outcome, it refuses and nothing changes.`,
        irreversible: `once ${outcome.toUpperCase()} is recorded it is final for this transaction, and ${outcome === 'commit' ? 'committed branches stay committed' : 'rolled-back branches are gone'}. Your name and the time are recorded in its history.`,
        confirmLabel: `Resolve: ${outcome}`,
      },
      done: (a) => `Resolved ${a.decision.toUpperCase()}${a.alreadyDecided ? ' (it was already recorded)' : ''}: ${a.completed ? 'completed, every branch acknowledged' : 'phase 2 still retrying'}${a.hazards ? `; ${a.hazards} hazard(s)` : ''}.`,
      after: refresh,
    });
  const retry = actionButton({
    label: 'Retry now',
    id: 'retry',
    status,
    path: `${base}/retry`,
    body: { waitMs: 5000 },
    confirm: {
      title: `Retry phase 2 of ${tx.id} now?`,
      happens: `${recorded} Phase 2 of it is sent now to every branch that has not acknowledged, instead of after its backoff; the page waits up to 5 s for the answers.`,
      irreversible: 'nothing new is decided (the recorded decision is applied, as it would be anyway); branches that acknowledge are finished. Your name and the time are recorded in its history.',
      confirmLabel: 'Retry now',
    },
    done: (a) => (a.retried ? `Retried: ${a.completed ? 'completed' : 'not every branch acknowledged yet'}${a.hazards ? `; ${a.hazards} hazard(s)` : ''}.` : 'Nothing to retry (no decision recorded, or already completed).'),
    after: refresh,
  });
  // Only for a transaction with a heuristic hazard: what an operator does once the data is reconciled by hand.
  const settle = (outcome) =>
    actionButton({
      label: outcome ? `Settle as ${outcome}` : 'Settle',
      id: outcome ? `settle-${outcome}` : 'settle',
      status,
      path: `${base}/settle`,
      body: (note) => (outcome ? { note, outcome } : { note }),
      confirm: {
        title: `Settle ${tx.id}${outcome ? ` as ${outcome.toUpperCase()}` : ''}?`,
        happens: `${recorded} It has ${tx.hazards.length} heuristic hazard(s). Settle it only once you have reconciled the hazard branches' data by hand: every branch without a hazard is finished now${tx.decision ? ` (${tx.decision})` : ''}, then it is completed${outcome ? ` as ${outcome.toUpperCase()}` : ''}. It is refused while a hazard branch is still prepared (retry it instead) or a branch cannot be reached.`,
        irreversible: 'once settled it is completed: no longer listed, counted or retried; its hazards stay in its history. Your name, the time and your note are recorded in its history.',
        confirmLabel: outcome ? `Settle as ${outcome}` : 'Settle',
        note: 'How was it reconciled? (required; recorded in its history)',
      },
      done: (a) => `Settled ${a.outcome.toUpperCase()}: completed${a.finished ? `, ${a.finished} other branch(es) finished` : ''}; its ${a.hazards} hazard branch(es) stay on record in its history.`,
      after: refresh,
    });
  // Undecided (a one-phase commit its participant could not confirm): the operator says how its branch ended.
  const settling = tx.hazards.length === 0 ? [] : tx.decision ? [settle()] : [settle('commit'), settle('abort')];
  return [h('h2', { id: 'h-actions' }, 'Actions'), h('div', { class: 'buttons' }, tx.decision ? retry : null, resolve('commit'), resolve('abort'), ...settling)];
}
