// The console: sign-in, the pages and the router (#/overview, #/transactions?…, #/tx/<id>, #/maintenance).
import { api, ApiError, session, whenUnauthorized } from './api.js';
import { badge, fill, h } from './dom.js';
import { overviewPage } from './overview.js';
import { transactionsPage } from './transactions.js';
import { detailPage } from './detail.js';
import { maintenancePage } from './maintenance.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let operator = null;
let stopPage = () => {};

// A token that stops working while signed in (the coordinator restarted with new tokens): back to sign-in.
// A refusal at sign-in itself is shown by the form.
whenUnauthorized((detail) => {
  if (operator) signOut(`Signed out: the coordinator refused the token (${detail}).`);
});

function signOut(message) {
  session.clear();
  operator = null;
  stopPage();
  showSignIn(message);
}

function showSignIn(message) {
  nav.hidden = true;
  fill(who);
  document.title = 'Sign in · twopc console';
  const error = h('p', { id: 'signin-error', class: 'error', role: 'alert' }, message ?? '');
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'token-help' });
  const form = h(
    'form',
    { id: 'signin', class: 'card signin' },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'Operator token'),
    input,
    h('p', { id: 'token-help', class: 'muted' }, 'A viewer or admin token of this coordinator. It is kept in this tab only (sessionStorage) and sent as a header; closing the tab forgets it.'),
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    session.save(input.value.trim());
    try {
      operator = await api.get('/v1/admin/whoami');
      route();
    } catch (e) {
      session.clear();
      fill(error, e instanceof ApiError && e.status === 401 ? `Refused: ${e.message}` : `Could not sign in: ${e.message}`);
      input.focus();
    }
  });
  fill(main, form);
  input.focus();
}

function showOperator() {
  nav.hidden = false;
  fill(who, h('span', {}, `${operator.name} `), badge(operator.role), ' ', h('button', { type: 'button', class: 'link', id: 'signout', onclick: () => signOut('Signed out.') }, 'Sign out'));
}

/** What the page does; the pages get the operator (actions are shown to admins only: the API refuses viewers anyway). */
function route() {
  stopPage();
  if (!operator) return showSignIn();
  showOperator();
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  const page = path.startsWith('/tx/') ? 'transactions' : path.replace(/^\//, '') || 'overview';
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const ctx = { main, operator, params };
  if (path.startsWith('/tx/')) stopPage = detailPage(ctx, decodeURIComponent(path.slice(4)));
  else if (path === '/transactions') stopPage = transactionsPage(ctx);
  else if (path === '/maintenance') stopPage = maintenancePage(ctx);
  else stopPage = overviewPage(ctx);
}

window.addEventListener('hashchange', () => {
  route();
  // A new page: screen readers and keyboards start at its content.
  main.focus();
});

(async () => {
  if (!session.token()) return showSignIn();
  try {
    operator = await api.get('/v1/admin/whoami');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) return showSignIn(`Could not reach the coordinator: ${e.message}`);
    return;
  }
  route();
})();
