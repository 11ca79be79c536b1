// The conversation as the visitor sees it: one item per message, keyed by its seq and kept in seq
// order whatever order pages and live messages arrive in (each seq is drawn once); the visitor's own
// messages waiting for the server's echo as "sending" items keyed by client_id, replaced by the echo;
// "read" under the visitor's messages the agent has seen; and which messages of the other side have
// really been on screen (for the visitor's read receipts and the launcher's unread count).

import { el, lang, t } from '/static/shell.js';

export class ChatLog {
  /** list: the <ol>; attachmentUrl(attachment): where its file is; onSeen(seq): the highest seq of
   * the other side on screen grew. */
  constructor(list, { attachmentUrl, onSeen }) {
    this.list = list;
    this.attachmentUrl = attachmentUrl;
    this.onSeen = onSeen;
    this.items = new Map();      // seq -> <li>
    this.maxSeq = 0;
    this.pending = new Map();    // client_id -> <li>
    this.readSeq = 0;            // the agent has seen the visitor's messages up to here
    this.seenSeq = 0;            // the visitor has seen the other side's messages up to here
    this.looking = true;         // the panel is shown and the page visible
    this.visible = new Set();    // seqs of the other side's items on screen now
    this.watcher = new IntersectionObserver((entries) => this.watched(entries), { root: list, threshold: 0.6 });
    // Follow new messages unless the visitor scrolled up to read; a hidden panel has no scroll position.
    this.following = true;
    list.addEventListener('scroll', () => { if (list.clientHeight) this.following = this.nearBottom(); }, { passive: true });
  }

  has(seq) {
    return this.items.has(seq);
  }

  /** A message from the server; false if it was already there. */
  add(message) {
    if (this.items.has(message.seq)) return false;
    const pending = message.client_id && this.pending.get(message.client_id);
    if (pending) {
      pending.remove();
      this.pending.delete(message.client_id);
    }
    const item = this.render(message);
    this.items.set(message.seq, item);
    // Nearly always the newest: then it goes before the visitor's messages still sending.
    const after = message.seq > this.maxSeq ? null
      : [...this.list.children].find((li) => li.dataset.seq && Number(li.dataset.seq) > message.seq);
    this.list.insertBefore(item, after || this.firstPending());
    this.maxSeq = Math.max(this.maxSeq, message.seq);
    if (message.sender !== 'visitor') this.watcher.observe(item);
    if (this.following || message.sender === 'visitor') this.scrollDown();
    return true;
  }

  /** The visitor's message before the server has it. */
  addPending(outboxItem) {
    if (this.pending.has(outboxItem.client_id)) return;
    const item = el('li', { className: 'chat-msg chat-msg-own', dataset: { sender: 'visitor', clientId: outboxItem.client_id, state: 'sending' } },
      el('div', { className: 'chat-bubble' }, this.content(outboxItem)),
      el('div', { className: 'chat-msg-meta' }, el('span', { className: 'chat-msg-state', i18n: 'widget.msg.sending' })));
    this.pending.set(outboxItem.client_id, item);
    this.list.append(item);
    this.scrollDown();
  }

  firstPending() {
    return this.pending.size ? this.pending.values().next().value : null;
  }

  render(message) {
    const own = message.sender === 'visitor';
    const item = el('li', {
      className: `chat-msg chat-msg-${message.sender === 'system' ? 'system' : own ? 'own' : 'other'}`,
      dataset: { seq: String(message.seq), sender: message.sender },
    });
    if (message.sender === 'system') {
      item.append(el('div', { className: 'chat-system-text', text: message.text }));
      return item;
    }
    if (!own) {
      item.append(message.sender === 'bot'
        ? el('div', { className: 'chat-msg-who', i18n: 'widget.msg.bot' })
        : el('div', { className: 'chat-msg-who', text: message.agent || '' }));
    }
    item.append(el('div', { className: 'chat-bubble' }, this.content(message)),
      el('div', { className: 'chat-msg-meta' },
        el('time', { dateTime: message.created_at, text: clock(message.created_at) }),
        own ? el('span', { className: 'chat-msg-state' }) : null));
    if (own) this.showState(item);
    return item;
  }

  content(message) {
    const parts = [];
    const file = message.attachment;
    if (file) {
      const url = this.attachmentUrl(file);
      if (String(file.content_type || '').startsWith('image/') && url) {
        parts.push(el('a', { className: 'chat-thumb-link', href: url, target: '_blank', rel: 'noopener' },
          el('img', { className: 'chat-thumb', src: url, alt: file.filename || '', loading: 'lazy' })));
      } else {
        parts.push(el(url ? 'a' : 'span', { className: 'chat-file', href: url || null, target: url ? '_blank' : null, rel: url ? 'noopener' : null },
          el('span', { className: 'chat-file-icon', 'aria-hidden': 'true', text: '📄' }),
          el('span', { className: 'chat-file-name', text: file.filename || '' }),
          file.size ? el('span', { className: 'chat-file-size', text: size(file.size) }) : null));
      }
    }
    if (message.text) parts.push(el('div', { className: 'chat-text', text: message.text }));
    return parts;
  }

  /** The agent has seen the visitor's messages up to `seq`. */
  setRead(seq) {
    if (!(seq > this.readSeq)) return;
    this.readSeq = seq;
    for (const [itemSeq, item] of this.items) if (itemSeq <= seq && item.dataset.sender === 'visitor') this.showState(item);
  }

  showState(item) {
    const read = Number(item.dataset.seq) <= this.readSeq;
    item.dataset.state = read ? 'read' : 'delivered';
    const label = item.querySelector('.chat-msg-state');
    label.dataset.i18n = read ? 'widget.msg.read' : 'widget.msg.delivered';
    label.textContent = t(label.dataset.i18n);
  }

  /** Whether the visitor can see the panel; seen messages count only while they can. */
  setLooking(looking) {
    this.looking = looking;
    if (looking && this.following) this.scrollDown();
    this.reportSeen();
  }

  watched(entries) {
    for (const entry of entries) {
      const seq = Number(entry.target.dataset.seq);
      if (entry.isIntersecting) this.visible.add(seq);
      else this.visible.delete(seq);
    }
    this.reportSeen();
  }

  reportSeen() {
    if (!this.looking || !this.visible.size) return;
    const top = Math.max(...this.visible);
    if (top > this.seenSeq) {
      this.seenSeq = top;
      this.onSeen(top);
    }
  }

  /** Messages of the other side after what the visitor has seen. */
  unread() {
    let count = 0;
    for (const [seq, item] of this.items) if (seq > this.seenSeq && item.dataset.sender !== 'visitor' && item.dataset.sender !== 'system') count += 1;
    return count;
  }

  nearBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
  }

  scrollDown() {
    this.list.scrollTop = this.list.scrollHeight;
    this.following = true;
  }

  clear() {
    this.watcher.disconnect();
    this.items.clear();
    this.maxSeq = 0;
    this.pending.clear();
    this.visible.clear();
    this.readSeq = 0;
    this.seenSeq = 0;
    this.following = true;
    this.list.replaceChildren();
  }
}

/** The time of day of an ISO time, in the visitor's own time zone. */
function clock(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return '';
  return new Intl.DateTimeFormat(lang(), { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(when);
}

function size(bytes) {
  const units = [['MB', 1024 * 1024], ['KB', 1024]];
  for (const [unit, scale] of units) if (bytes >= scale) return `${new Intl.NumberFormat(lang(), { maximumFractionDigits: 1 }).format(bytes / scale)} ${unit}`;
  return `${bytes} B`;
}
