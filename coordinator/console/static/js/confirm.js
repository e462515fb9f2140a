// Every action goes through a confirmation that says what will happen and what cannot be undone, then shows what
// the coordinator answered: done, or refused (with the register's or the API's own words).
import { api, ApiError } from './api.js';
import { fill, h } from './dom.js';

const dialog = document.getElementById('confirm');

/**
 * Asks; resolves true when the operator confirms. `note`: the label of a text the operator writes into the dialog
 * (#confirm-note; an action's body reads it, see actionButton).
 */
export function confirmAction({ title, happens, irreversible, confirmLabel, note }) {
  fill(document.getElementById('confirm-title'), title);
  fill(
    document.getElementById('confirm-body'),
    h('p', {}, h('strong', {}, 'What happens: '), happens),
    h('p', {}, h('strong', {}, 'Cannot be undone: '), irreversible),
    note ? h('p', {}, h('label', { for: 'confirm-note' }, h('strong', {}, note)), h('br', {}), h('textarea', { id: 'confirm-note', rows: '3', cols: '60', maxlength: '1000' })) : null,
  );
  fill(document.getElementById('confirm-ok'), confirmLabel);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

/**
 * A button that confirms, POSTs, and reports into `status` (a live region). `done(answer)` returns the text of a
 * success; a refusal is shown as the coordinator wrote it. `body` may be a function of what the operator wrote
 * into the dialog (`confirm.note`).
 */
export function actionButton({ label, id, confirm, path, body = {}, status, done, after }) {
  const button = h('button', { type: 'button', id, class: 'action' }, label);
  button.addEventListener('click', async () => {
    if (!(await confirmAction(confirm))) return;
    button.disabled = true;
    fill(status, h('p', { class: 'muted' }, `${label}: working…`));
    try {
      const answer = await api.post(path, typeof body === 'function' ? body(document.getElementById('confirm-note')?.value ?? '') : body);
      fill(status, h('p', { class: 'ok', role: 'status' }, done(answer)));
    } catch (e) {
      const code = e instanceof ApiError ? e.code : 'error';
      fill(status, h('div', { class: 'refusal', role: 'alert' }, h('p', {}, h('strong', {}, `Refused (${code}): `), e.message)));
    } finally {
      button.disabled = false;
      after?.();
    }
  });
  return button;
}
