// Overview: what is stuck and how the coordinator is doing, refreshed every 2 s.
import { api, listPath } from './api.js';
import { age, ageOf, badge, fill, h, svg, table, time } from './dom.js';
import { MetricsWindow } from './metrics.js';
import { poll } from './poll.js';

const STATES = ['active', 'preparing', 'committed', 'aborted', 'in-doubt', 'heuristic'];
const STATE_HELP = {
  active: 'begun, not yet committing',
  preparing: 'asking branches to prepare',
  committed: 'decided commit, phase 2 not acknowledged everywhere',
  aborted: 'decided abort, phase 2 not acknowledged everywhere',
  'in-doubt': 'past active and unfinished: some branch may hold a prepared transaction',
  heuristic: 'a heuristic hazard waits for an operator',
};

export function overviewPage({ main }) {
  document.title = 'Overview · twopc console';
  const metrics = new MetricsWindow();
  const counts = h('div', { class: 'cards', id: 'counts' });
  const oldest = h('div', { id: 'oldest' });
  const rates = h('div', { id: 'rates' });
  const instances = h('div', { id: 'instances' });
  const health = h('div', { id: 'health' });
  const updated = h('p', { class: 'muted', id: 'updated', 'aria-live': 'off' });
  fill(
    main,
    h('h1', {}, 'Overview'),
    updated,
    h('section', { 'aria-labelledby': 'h-counts' }, h('h2', { id: 'h-counts' }, 'Transactions by state'), counts),
    h('section', { 'aria-labelledby': 'h-oldest' }, h('h2', { id: 'h-oldest' }, 'Oldest in doubt'), oldest),
    h('section', { 'aria-labelledby': 'h-rates' }, h('h2', { id: 'h-rates' }, 'Decisions and phase latencies (last 5 minutes)'), rates),
    h('section', { 'aria-labelledby': 'h-instances' }, h('h2', { id: 'h-instances' }, 'Instances and leases'), instances),
    h('section', { 'aria-labelledby': 'h-health' }, h('h2', { id: 'h-health' }, 'Decision log'), health),
  );

  return poll(async () => {
    const [totals, inDoubt, report, text, ready] = await Promise.all([
      Promise.all(STATES.map((s) => api.get(listPath({ state: s, limit: 1 })).then((l) => l.total ?? l.transactions.length))),
      api.get(listPath({ state: 'in-doubt', limit: 1 })),
      api.get('/v1/admin/instances'),
      api.metrics(),
      api.ready().catch(() => false),
    ]).catch((e) => {
      fill(updated, h('span', { class: 'error', role: 'alert' }, `Not updated: ${e.message}`));
      return [];
    });
    if (!totals) return;
    metrics.add(text);
    fill(
      counts,
      STATES.map((s, i) =>
        h('a', { class: `card count${(s === 'heuristic' || s === 'in-doubt') && totals[i] > 0 ? ' alarm' : ''}`, href: `#/transactions?state=${s}`, id: `count-${s}` },
          h('span', { class: 'number' }, String(totals[i])), h('span', { class: 'label' }, s), h('span', { class: 'help' }, STATE_HELP[s]))),
    );
    const first = inDoubt.transactions[0];
    fill(
      oldest,
      first
        ? h('p', {}, h('a', { href: `#/tx/${first.id}`, class: 'mono' }, first.id), ' ', badge(first.state), ` in doubt for ${ageOf(first.createdAt)} (begun `, time(first.createdAt), ')',
            first.hazards.length > 0 ? h('span', { class: 'error' }, ` — ${first.hazards.length} heuristic hazard(s)`) : '')
        : h('p', {}, 'Nothing in doubt.'),
    );
    renderRates(rates, metrics);
    fill(instances, instancesView(report));
    fill(health, healthView(report.store, ready, metrics));
    fill(updated, 'Live: updated ', time(new Date().toISOString()), '.');
  }, 2000);
}

function renderRates(el, metrics) {
  const rate = metrics.decisionRate();
  const series = metrics.decisionRates();
  const phases = metrics.phaseLatencies();
  const ms = (v) => (v === null ? '–' : v < 10 ? `${v.toFixed(2)} ms` : `${Math.round(v)} ms`);
  fill(
    el,
    h('p', {}, h('span', { class: 'big', id: 'decision-rate' }, rate === null ? '–' : rate.toFixed(1)), ' decisions per second', rate === null ? ' (needs two samples)' : ''),
    sparkline(series),
    table('Phase latencies (twopc_phase_seconds): since this page opened, up to 5 minutes, and since the coordinator started', ['phase', 'count', 'mean', 'p95 (bucket bound)', 'count since start', 'mean since start'], phases, (p) => [
      p.phase,
      String(p.count),
      ms(p.meanMs),
      ms(p.p95Ms),
      String(p.totalCount),
      ms(p.totalMeanMs),
    ]),
    h('p', { class: 'muted', id: 'ended' }, `Ended since start: ${Object.entries(metrics.endedByOutcome()).map(([o, n]) => `${n} ${o}`).join(', ') || 'none'}. Hazards recorded: ${metrics.gauge('twopc_heuristic_hazards_total')}; phase-2 attempts not acknowledged: ${metrics.gauge('twopc_phase_two_retries_total')}; driving phase 2 here: ${metrics.gauge('twopc_in_doubt')}.`),
  );
}

/** Decisions per second as bars, newest on the right; the numbers are in the text beside it. */
function sparkline(series) {
  const width = 300;
  const height = 40;
  const max = Math.max(1, ...series.map((p) => p.rate));
  const n = Math.max(series.length, 1);
  const bar = width / n;
  return svg(
    'svg',
    { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `decisions per second, last ${series.length} samples, peak ${max.toFixed(1)}`, class: 'spark' },
    series.map((p, i) => svg('rect', { x: (i * bar).toFixed(1), y: (height - (p.rate / max) * height).toFixed(1), width: Math.max(1, bar - 1).toFixed(1), height: ((p.rate / max) * height).toFixed(1), fill: '#1f5fa8' })),
  );
}

function instancesView(report) {
  if (report.store === 'file') return h('p', {}, 'One instance on a file log (no leases).');
  return table(`Instances on the ${report.store} log (this one: lease ${report.self ?? 'none'})`, ['lease token', 'name', 'url', 'state', 'expires'], report.instances, (i) => [
    String(i.token),
    i.name,
    h('span', { class: 'mono' }, i.url),
    i.state === 'taken-over' ? `taken over by ${i.takenOverBy}` : badge(i.state, i.state === 'expired' ? 'heuristic' : 'ok'),
    `${time(i.expiresAt).textContent} (${age(Date.parse(i.expiresAt) - Date.now())} left)`,
  ]);
}

function healthView(store, ready, metrics) {
  const failed = metrics.gauge('twopc_decision_log_failed') > 0;
  return h(
    'ul',
    { class: 'plain' },
    h('li', {}, `Store: ${store}`),
    h('li', {}, 'Writable: ', failed ? badge('failed: restart once the disk is healthy', 'heuristic') : badge('yes', 'ok')),
    h('li', {}, 'Ready (recovery done, taking work): ', ready ? badge('yes', 'ok') : badge('no', 'heuristic')),
    h('li', {}, h('a', { href: '#/maintenance' }, 'Verify or compact the log')),
  );
}
