// Building DOM nodes without innerHTML: every text an API answer carries is set as text, never parsed as markup.

/** An element: `h('a', { href: '#/x', class: 'y' }, 'text', child)`. Attributes set to null/undefined/false are left out. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An SVG element (charts); attributes only, no style. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined && value !== null) el.setAttribute(name, String(value));
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "4 s", "3 min 20 s", "2 h 5 min", "3 d 4 h". */
export function age(ms) {
  if (!Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m % 60} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

/** Age of an ISO time from now. */
export const ageOf = (iso) => age(Date.now() - Date.parse(iso));

/** A local, readable time with its ISO value as a tooltip-free machine value. */
export function time(iso) {
  return h('time', { datetime: iso }, new Date(iso).toLocaleString(undefined, { hour12: false }));
}

/** A coloured badge for a state, outcome or role; the text says it, the colour only repeats it. */
export function badge(text, kind = text) {
  return h('span', { class: `badge badge-${String(kind).replace(/[^a-z-]/g, '')}` }, text);
}

/** A table with column headings; `cells(row)` returns the row's cells. */
export function table(caption, headings, rows, cells) {
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.length === 0 ? h('tr', {}, h('td', { colspan: headings.length, class: 'muted' }, 'none')) : rows.map((r) => h('tr', {}, cells(r).map((c) => h('td', {}, c))))),
  );
}
