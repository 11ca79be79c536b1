// Canned replies in the chat composer: typing `/code` (e.g. `/hi`) lists the tenant's replies
// whose short code matches (GET /api/canned-replies: [{id, code, text}]); Tab or Enter puts the
// chosen one's text in place of the `/code`, the arrows choose, Escape closes the list.

import { api, el, t } from '/static/shell.js';

const MAX_SHOWN = 8;
const REFRESH_MS = 60_000;
/** `/code` right before the caret, at the start or after a space. */
const TOKEN = /(^|\s)\/([^\s/]{0,32})$/;

const cache = { replies: [], at: 0, loading: null };

/** The tenant's canned replies, fetched at most once a minute; [] while the API is missing. */
function replies() {
  if (!cache.loading && Date.now() - cache.at > REFRESH_MS) {
    cache.loading = api('GET', '/api/canned-replies')
      .then((list) => { cache.replies = Array.isArray(list) ? list.filter((r) => r && r.code && r.text) : []; })
      .catch(() => { /* none to offer: the composer works without them */ })
      .finally(() => { cache.at = Date.now(); cache.loading = null; });
  }
  return cache.loading || Promise.resolve();
}

/** The `/code` being typed before `caret` in `text`: {start, end, query}, or null. */
export function cannedToken(text, caret) {
  const match = TOKEN.exec(text.slice(0, caret));
  if (!match) return null;
  const start = match.index + match[1].length;
  return { start, end: caret, query: match[2].toLowerCase() };
}

/** The replies for `query`: codes starting with it first, then codes containing it. */
export function matchCanned(list, query) {
  const starts = [];
  const contains = [];
  for (const reply of list) {
    const code = String(reply.code).toLowerCase();
    if (code.startsWith(query)) starts.push(reply);
    else if (query && code.includes(query)) contains.push(reply);
  }
  const byCode = (a, b) => String(a.code).localeCompare(String(b.code));
  return [...starts.sort(byCode), ...contains.sort(byCode)].slice(0, MAX_SHOWN);
}

/** The picker under a textarea; `onInsert()` runs after a reply was put in. */
export class CannedPicker {
  constructor(input, list, onInsert) {
    this.input = input;
    this.list = list;
    this.onInsert = onInsert;
    this.shown = [];
    this.index = 0;
    this.token = null;
    list.addEventListener('mousedown', (event) => event.preventDefault()); // keep the focus in the input
    list.addEventListener('click', (event) => {
      const item = event.target instanceof Element ? event.target.closest('[data-index]') : null;
      if (item) this.insert(Number(item.dataset.index));
    });
  }

  get open() {
    return this.shown.length > 0;
  }

  /** After each input: list the matches of the `/code` before the caret, if any. */
  update() {
    const token = this.input.selectionStart === this.input.selectionEnd
      ? cannedToken(this.input.value, this.input.selectionStart) : null;
    this.token = token;
    if (!token) { this.close(); return; }
    replies().then(() => {
      if (this.token !== token) return; // typed on meanwhile
      this.shown = matchCanned(cache.replies, token.query);
      this.index = 0;
      this.render();
    });
  }

  /** A key in the input; true when the picker used it (the caller then does nothing else). */
  key(event) {
    if (!this.open) return false;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      const step = event.key === 'ArrowDown' ? 1 : -1;
      this.index = (this.index + step + this.shown.length) % this.shown.length;
      this.render();
    } else if ((event.key === 'Tab' && !event.shiftKey) || (event.key === 'Enter' && !event.shiftKey)) {
      this.insert(this.index);
    } else if (event.key === 'Escape') {
      this.close();
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  insert(index) {
    const reply = this.shown[index];
    const token = this.token;
    if (!reply || !token) return;
    const value = this.input.value;
    this.input.value = value.slice(0, token.start) + reply.text + value.slice(token.end);
    const caret = token.start + reply.text.length;
    this.input.setSelectionRange(caret, caret);
    this.close();
    this.input.focus();
    this.onInsert();
  }

  close() {
    this.token = null;
    this.shown = [];
    this.render();
  }

  render() {
    this.list.hidden = !this.open;
    this.input.setAttribute('aria-expanded', String(this.open));
    this.list.replaceChildren(...this.shown.map((reply, i) => el('li', {
      role: 'option', id: `chat-canned-${i}`, className: 'chat-canned-item', dataset: { index: String(i) },
      'aria-selected': String(i === this.index),
    }, el('span', { className: 'chat-canned-code mono', text: `/${reply.code}` }),
    el('span', { className: 'chat-canned-text', text: reply.text }))));
    if (this.open) this.input.setAttribute('aria-activedescendant', `chat-canned-${this.index}`);
    else this.input.removeAttribute('aria-activedescendant');
    this.list.setAttribute('aria-label', t('agent.chat.canned.label'));
  }
}
