// The panel's forms: before the chat (name, phone, question), when nobody can chat (a message to
// follow up: name, phone or e-mail, message) and after it (1 to 5 stars and a comment). Each field
// says what is wrong with it under it, in the page's language; the server checks again.

import { el, t } from '/static/shell.js';

export const LIMITS = { name: 64, phone: 32, email: 200, question: 1000, message: 2000, comment: 1000 };
const PHONE = /^\+?[0-9][0-9 -]*$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function field(name, labelKey, control, { optional = false } = {}) {
  const error = el('p', { id: `${control.id}-error`, className: 'field-error', role: 'alert', hidden: true });
  control.setAttribute('aria-describedby', error.id);
  return el('label', { className: 'field', dataset: { field: name } },
    el('span', { className: 'field-label' }, el('span', { i18n: labelKey }),
      optional ? el('span', { className: 'field-optional', i18n: 'widget.form.optional' }) : null),
    control, error);
}

function input(id, name, props = {}) {
  return el('input', { id, name, type: 'text', maxlength: String(LIMITS[name]), ...props });
}

function textarea(id, name, props = {}) {
  return el('textarea', { id, name, rows: '3', maxlength: String(LIMITS[name]), ...props });
}

/** Show `key`'s words under the field `name` of `form` (null: clear it). */
function setError(form, name, key, params) {
  const control = form.elements[name];
  const error = document.getElementById(`${control.id}-error`);
  control.setAttribute('aria-invalid', key ? 'true' : 'false');
  error.hidden = !key;
  if (key) {
    error.dataset.i18n = key;
    error.textContent = t(key, params);
  } else {
    delete error.dataset.i18n;
    error.textContent = '';
  }
}

function digits(value) {
  return value.replace(/\D/g, '').length;
}

function phoneError(value) {
  if (!value) return null;
  return PHONE.test(value) && digits(value) >= 5 && digits(value) <= 20 ? null : 'widget.form.error.phone';
}

/** Check the fields by `rules` ({name: value -> error key or null}); the first wrong field gets the cursor. */
function check(form, rules) {
  let first = null;
  for (const [name, rule] of Object.entries(rules)) {
    const key = rule(form.elements[name].value.trim());
    setError(form, name, key);
    if (key && !first) first = form.elements[name];
  }
  if (first) first.focus();
  return !first;
}

function required(key) {
  return (value) => (value ? null : key);
}

/** The form before a chat; onSubmit({name, phone, question}) may throw an Error whose text is shown. */
export function prechatForm({ name = '', phone = '', onSubmit }) {
  const form = el('form', { id: 'prechat-form', className: 'chat-form', novalidate: true },
    el('p', { id: 'prechat-greeting', className: 'chat-form-intro', i18n: 'widget.prechat.intro' }),
    field('name', 'widget.form.name', input('prechat-name', 'name', { autocomplete: 'name', value: name, required: true })),
    field('phone', 'widget.form.phone', input('prechat-phone', 'phone', {
      type: 'tel', inputmode: 'tel', autocomplete: 'tel', value: phone, maxlength: String(LIMITS.phone) }), { optional: true }),
    field('question', 'widget.form.question', textarea('prechat-question', 'question', { required: true })),
    el('p', { id: 'prechat-error', className: 'form-error', role: 'alert', hidden: true }),
    el('button', { id: 'prechat-submit', type: 'submit', className: 'btn btn-primary btn-block', i18n: 'widget.prechat.start' }));
  wire(form, () => check(form, {
    name: required('widget.form.error.name'),
    phone: phoneError,
    question: required('widget.form.error.question'),
  }), () => onSubmit(values(form, ['name', 'phone', 'question'])));
  return form;
}

/** The message left when nobody can chat; onSubmit({name, phone, email, message}). */
export function offlineForm({ name = '', phone = '', message = '', onSubmit }) {
  const form = el('form', { id: 'offline-form', className: 'chat-form', novalidate: true },
    el('p', { className: 'chat-form-intro', i18n: 'widget.offline.intro' }),
    field('name', 'widget.form.name', input('offline-name', 'name', { autocomplete: 'name', value: name, required: true })),
    field('phone', 'widget.form.phone', input('offline-phone', 'phone', {
      type: 'tel', inputmode: 'tel', autocomplete: 'tel', value: phone, maxlength: String(LIMITS.phone) }), { optional: true }),
    field('email', 'widget.form.email', input('offline-email', 'email', {
      type: 'email', inputmode: 'email', autocomplete: 'email' }), { optional: true }),
    field('message', 'widget.form.message', textarea('offline-message', 'message', { value: message, required: true })),
    el('p', { id: 'offline-error', className: 'form-error', role: 'alert', hidden: true }),
    el('button', { id: 'offline-submit', type: 'submit', className: 'btn btn-primary btn-block', i18n: 'widget.offline.send' }));
  wire(form, () => {
    const ok = check(form, {
      name: required('widget.form.error.name'),
      phone: phoneError,
      email: (value) => (!value || EMAIL.test(value) ? null : 'widget.form.error.email'),
      message: required('widget.form.error.message'),
    });
    if (!ok) return false;
    if (form.elements.phone.value.trim() || form.elements.email.value.trim()) return true;
    setError(form, 'phone', 'widget.form.error.contact');
    form.elements.phone.focus();
    return false;
  }, () => onSubmit(values(form, ['name', 'phone', 'email', 'message'])));
  return form;
}

/** The rating card after a chat: 1-5 stars and a comment; onSubmit({rating, comment}), onSkip(). */
export function ratingCard({ onSubmit, onSkip }) {
  let rating = 0;
  const stars = [1, 2, 3, 4, 5].map((value) => el('button', {
    type: 'button', className: 'star', role: 'radio', 'aria-checked': 'false', dataset: { rating: String(value) },
    'aria-label': t('widget.rating.star', { n: value }), text: '★',
    onclick: () => choose(value),
    onkeydown: (event) => {
      const step = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      choose(Math.min(5, Math.max(1, (rating || value) + step)));
      stars[rating - 1].focus();
    },
  }));
  const form = el('form', { id: 'rating-form', className: 'chat-form rating-card', novalidate: true },
    el('h2', { className: 'rating-title', i18n: 'widget.rating.title' }),
    el('div', { id: 'rating-stars', className: 'rating-stars', role: 'radiogroup', 'aria-label': t('widget.rating.title') }, stars),
    el('p', { id: 'rating-word', className: 'rating-word', 'aria-live': 'polite' }),
    el('label', { className: 'field' }, el('span', { className: 'field-label' }, el('span', { i18n: 'widget.rating.comment' }),
      el('span', { className: 'field-optional', i18n: 'widget.form.optional' })),
    textarea('rating-comment', 'comment')),
    el('p', { id: 'rating-error', className: 'form-error', role: 'alert', hidden: true }),
    el('div', { className: 'rating-actions' },
      el('button', { id: 'rating-skip', type: 'button', className: 'btn btn-secondary', i18n: 'widget.rating.skip', onclick: onSkip }),
      el('button', { id: 'rating-submit', type: 'submit', className: 'btn btn-primary', i18n: 'widget.rating.submit', disabled: true })));

  function choose(value) {
    rating = value;
    stars.forEach((star, i) => {
      star.setAttribute('aria-checked', String(i + 1 === value));
      star.classList.toggle('star-on', i < value);
      star.tabIndex = i + 1 === value ? 0 : -1;
    });
    form.querySelector('#rating-word').dataset.i18n = `widget.rating.word_${value}`;
    form.querySelector('#rating-word').textContent = t(`widget.rating.word_${value}`);
    form.querySelector('#rating-submit').disabled = false;
  }

  wire(form, () => rating > 0, () => onSubmit({ rating, comment: form.elements.comment.value.trim() }));
  return form;
}

function values(form, names) {
  return Object.fromEntries(names.map((name) => [name, form.elements[name].value.trim()]));
}

/** Submit: check, then `send()`; an error it throws is shown above the button, and the button comes back. */
function wire(form, valid, send) {
  const error = form.querySelector('.form-error');
  const button = form.querySelector('[type=submit]');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!valid()) return;
    button.disabled = true;
    try {
      await send();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}
