// Transactions: filtered (state, age, participant, id), paged, refreshed every 5 s.
import { api, listPath } from './api.js';
import { ageOf, badge, fill, h } from './dom.js';
import { poll } from './poll.js';

const PAGE = 25;
const STATES = ['', 'active', 'preparing', 'committed', 'aborted', 'in-doubt', 'heuristic'];
const AGES = [['', 'any age'], ['10000', 'older than 10 s'], ['60000', 'older than 1 min'], ['300000', 'older than 5 min'], ['3600000', 'older than 1 h']];

export function transactionsPage({ main, params }) {
  document.title = 'Transactions · twopc console';
  const filters = {
    state: params.get('state') ?? '',
    minAgeMs: params.get('minAgeMs') ?? '',
    participant: params.get('participant') ?? '',
    idPrefix: params.get('idPrefix') ?? '',
    offset: Number(params.get('offset') ?? 0) || 0,
  };
  const select = (id, label, options, value) =>
    h('div', { class: 'field' }, h('label', { for: id }, label), h('select', { id, name: id }, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t))));
  const text = (id, label, value, extra = {}) => h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, name: id, type: 'text', value, ...extra }));
  const form = h(
    'form',
    { class: 'filters', id: 'filters', role: 'search', 'aria-label': 'Filter transactions' },
    select('state', 'State', STATES.map((s) => [s, s || 'any state']), filters.state),
    select('minAgeMs', 'Age', AGES, filters.minAgeMs),
    text('participant', 'Participant', filters.participant),
    text('idPrefix', 'Id starts with', filters.idPrefix, { pattern: '[0-9a-fA-F\\-]{1,36}', spellcheck: 'false' }),
    h('button', { type: 'submit' }, 'Apply'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const q = new URLSearchParams();
    for (const [k, v] of data) if (String(v).trim() !== '') q.set(k, String(v).trim());
    location.hash = `#/transactions${q.toString() ? `?${q}` : ''}`;
  });
  const result = h('div', { id: 'list' });
  fill(main, h('h1', {}, 'Transactions'), h('p', { class: 'muted' }, 'Live and unfinished transactions, oldest first. Completed ones are looked up by id.'), form, result);

  return poll(async () => {
    const { offset, ...rest } = filters;
    let list;
    try {
      list = await api.get(listPath({ ...rest, limit: PAGE, offset }));
    } catch (e) {
      fill(result, h('p', { class: 'error', role: 'alert' }, `Could not list: ${e.message}`));
      return;
    }
    fill(result, listTable(list), pager(list, filters));
  }, 5000);
}

function listTable(list) {
  const headings = ['id', 'state', 'decision', 'age', 'participants', 'hazards'];
  return h(
    'table',
    { id: 'tx-table' },
    h('caption', {}, `${list.total ?? list.transactions.length} matching`),
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
    h(
      'tbody',
      {},
      list.transactions.length === 0
        ? h('tr', {}, h('td', { colspan: headings.length, class: 'muted' }, 'no transaction matches'))
        : list.transactions.map((t) =>
            h('tr', { 'data-id': t.id },
              h('td', {}, h('a', { href: `#/tx/${t.id}`, class: 'mono' }, t.id)),
              h('td', {}, badge(t.state)),
              h('td', {}, t.decision ?? '–'),
              h('td', {}, ageOf(t.createdAt)),
              h('td', {}, [...new Set(t.branches.map((b) => b.participant))].join(', ') || '–'),
              h('td', {}, t.hazards.length > 0 ? badge(String(t.hazards.length), 'heuristic') : '0'))),
    ),
  );
}

function pager(list, filters) {
  const total = list.total ?? list.transactions.length;
  const from = total === 0 ? 0 : filters.offset + 1;
  const to = filters.offset + list.transactions.length;
  const link = (offset, label) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...filters, offset })) if (v !== '' && v !== 0) q.set(k, String(v));
    return h('a', { href: `#/transactions?${q}`, class: 'button' }, label);
  };
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    filters.offset > 0 ? link(Math.max(0, filters.offset - PAGE), 'Previous page') : null,
    h('span', {}, ` ${from}–${to} of ${total} `),
    list.truncated ? link(filters.offset + PAGE, 'Next page') : null,
  );
}
