// What the console's sections share: building elements, labelled fields, API errors shown next to
// the field they are about, a confirmation dialog for destructive actions, tables and selects.
// Visible text is either a data-i18n key (static text: the shell's translate() refreshes it on a
// language change) or t() output in lists, which each section re-renders on a language change.

import { el, t, translate, ApiError, showError, toast, validationText } from '/static/shell.js';

/** The shell's element builder, by the short name the console's modules use. */
export const h = el;

/** A <label class="field">: its caption (a catalogue key), the control, and a slot for the API's complaint. */
export function field(labelKey, control, hintKey) {
  return h('label', { className: 'field' },
    h('span', { className: 'field-label', i18n: labelKey }),
    control,
    hintKey ? h('span', { className: 'field-hint muted', i18n: hintKey }) : null,
    h('span', { className: 'field-error', role: 'alert', hidden: true }));
}

export function input(name, props = {}) {
  return h('input', { name, type: 'text', autocomplete: 'off', ...props });
}

/** A <select> of `items` [{value, label}] (labels already translated), `value` preselected. */
export function select(name, items, value, props = {}) {
  return h('select', { name, ...props },
    items.map((item) => h('option', { value: item.value, text: item.label, selected: String(item.value) === String(value ?? '') })));
}

/** Replace a select's options keeping its value when it is still offered. */
export function setOptions(sel, items) {
  const current = sel.value;
  sel.replaceChildren(...items.map((item) => h('option', { value: item.value, text: item.label })));
  if (items.some((item) => String(item.value) === current)) sel.value = current;
}

export function button(i18n, onClick, className = 'btn btn-secondary', props = {}) {
  return h('button', { type: 'button', className, i18n, on: { click: onClick }, ...props });
}

/** A section's heading, intro line and (optional) toolbar on its right. */
export function header(titleKey, introKey, ...tools) {
  return h('div', { className: 'section-head' },
    h('div', {}, h('h2', { i18n: titleKey }), introKey ? h('p', { className: 'muted', i18n: introKey }) : null),
    tools.length ? h('div', { className: 'section-tools' }, tools) : null);
}

/** A table: `columns` catalogue keys for the header, `rows` arrays of cells (nodes or text). */
export function table(columns, rows, emptyKey = 'admin.common.empty', props = {}) {
  if (!rows.length) return h('p', { className: 'muted empty', i18n: emptyKey });
  return h('table', { className: 'data-table', ...props },
    h('thead', {}, h('tr', {}, columns.map((key) => h('th', { scope: 'col', i18n: key || null })))),
    h('tbody', {}, rows.map((cells) => h('tr', { 'data-key': cells.key ?? null },
      cells.map((cell) => h('td', {}, cell instanceof Node ? cell : String(cell ?? '')))))));
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll('.field-error')) { slot.textContent = ''; slot.hidden = true; }
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
}

/** The control a 422 detail's loc (["body", "relax", 0, "after"]) is about: the longest name that matches. */
function controlFor(form, loc) {
  const path = ['body', 'query', 'path'].includes(loc[0]) ? loc.slice(1) : loc;
  for (let n = path.length; n > 0; n--) {
    const name = path.slice(0, n).join('.');
    const control = [...form.elements].find((c) => c.name === name);
    if (control) return control;
  }
  return null;
}

/**
 * A 422's details as [{loc, msg}]: FastAPI's own `details`, or a route's message of the form
 * "weekly.mon.0: bad range; holidays.1: bad date" (routes that validate the body themselves).
 */
function detailsOf(err) {
  if (!(err instanceof ApiError) || err.status !== 422 || !err.detail) return [];
  if (Array.isArray(err.detail.details)) return err.detail.details;
  const parts = String(err.detail.message || '').split('; ').map((part) => part.match(/^([\w.]+): (.+)$/s));
  return parts.every(Boolean) ? parts.map((m) => ({ loc: m[1].split('.'), msg: m[2] })) : [];
}

/** Put a 422's validation details next to their fields; true when every detail found its field. */
function showFieldErrors(form, err) {
  const details = detailsOf(err);
  if (!details.length) return false;
  let placed = 0;
  for (const detail of details) {
    const control = controlFor(form, detail.loc || []);
    const slot = control && control.closest('.field, td') && control.closest('.field, td').querySelector('.field-error');
    if (!slot) continue;
    control.setAttribute('aria-invalid', 'true');
    const text = validationText(detail);  // pydantic's type and ctx in the page's language
    slot.textContent = slot.hidden ? text : `${slot.textContent}; ${text}`;
    slot.hidden = false;
    if (!placed) control.focus();
    placed++;
  }
  return placed === details.length;
}

/**
 * Run a form's submit: errors of the fields go next to them, the rest to the shell's banner.
 * `fn` gets the form's data; a success toast `doneKey` follows when given.
 */
export function onSubmit(form, fn, doneKey) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const submit = form.querySelector('[type="submit"]');
    if (submit) submit.disabled = true;
    try {
      await fn(new FormData(form));
      if (doneKey) toast(t(doneKey), 'info', 3000);
    } catch (err) {
      if (err instanceof FieldProblem) fieldError(err.control, err.message);
      else if (!showFieldErrors(form, err)) showError(err);
    } finally {
      if (submit) submit.disabled = false;
    }
  });
  return form;
}

/** What the page itself finds wrong with a field before asking the API; onSubmit shows it there. */
export class FieldProblem extends Error {
  constructor(control, message) {
    super(message);
    this.control = control;
  }
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The trimmed value of a form's name field (calendar, prompt, queue), or a FieldProblem next to it. */
export function nameOf(form, field = 'name') {
  const control = form.elements[field];
  const value = control.value.trim();
  if (!NAME.test(value)) throw new FieldProblem(control, t('admin.common.name_hint'));
  return value;
}

function fieldError(control, message) {
  const slot = control.closest('.field, td').querySelector('.field-error');
  control.setAttribute('aria-invalid', 'true');
  slot.textContent = message;
  slot.hidden = false;
  control.focus();
}

/** Ask before a destructive action (a modal <dialog>, keyboard usable; Escape cancels). */
export function confirmAction(message, okKey = 'admin.common.delete') {
  const dialog = document.getElementById('confirm-dialog');
  document.getElementById('confirm-text').textContent = message;
  const ok = document.getElementById('confirm-ok');
  ok.dataset.i18n = okKey;
  translate(dialog);
  dialog.returnValue = '';
  dialog.showModal();
  ok.focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

/** A delete button that confirms first (`what` names the object in the question), then runs `fn`. */
export function deleteButton(what, fn) {
  return button('admin.common.delete', async () => {
    if (!(await confirmAction(t('admin.common.confirm_delete', { what })))) return;
    try { await fn(); } catch (err) { showError(err); }
  }, 'btn btn-outline-danger btn-sm', { 'aria-label': t('admin.common.delete_named', { name: what }) });
}

/** Secrets shown once (new passwords) under `title`: a box that says so, with a button to dismiss it. */
export function secretsBox(title, pairs) {
  const box = h('div', { className: 'secret-box', role: 'status' },
    h('strong', { text: title }),
    h('p', { className: 'muted', i18n: 'admin.common.shown_once' }),
    h('dl', {}, pairs.map(([labelKey, value, testId]) => [h('dt', { i18n: labelKey }),
      h('dd', { className: 'mono', 'data-secret': testId, text: value })])));
  box.append(button('admin.common.dismiss', () => box.remove(), 'btn btn-secondary btn-sm'));
  return box;
}

/** Raw request for bodies that are not JSON (uploads) or answers that are not (audio): the Response. */
export async function request(method, path, body, headers = {}) {
  const reply = await fetch(path, { method, body, headers, credentials: 'same-origin' });
  if (!reply.ok) {
    let data = null;
    try { data = await reply.json(); } catch (_) { data = null; }
    throw new ApiError(reply.status, data);
  }
  return reply;
}
