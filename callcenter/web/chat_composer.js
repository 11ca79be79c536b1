// Where the visitor writes: the text box (Enter sends, Shift+Enter is a new line, never while an input
// method is composing Chinese), the typing signal (at most one every few seconds, "stopped" after a
// pause or on send), a small fixed set of emoji and attachments (images and PDF, checked here against
// the server's own limits before the upload, so a visitor learns at once that a file cannot go).

import { el, t } from '/static/shell.js';
import { newClientId } from '/static/chat_store.js';

export const EMOJI = ['😊', '😄', '😂', '😅', '😍', '🤔', '😮', '😢', '🙏', '👍', '👌', '👋',
  '🎉', '❤️', '🌹', '💯', '✅', '❌', '⏰', '📦', '💰', '🎁', '☕', '📞'];
/** What the server accepts (it checks the bytes; this checks the browser's word, to fail early). */
export const FILE_TYPES = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif', 'image/webp': 'webp', 'application/pdf': 'pdf' };
const EXTENSIONS = /\.(png|jpe?g|gif|webp|pdf)$/i;
/** The tool buttons' icons (24x24 strokes): drawn, not emoji, so every system shows the same. */
const SMILE = 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8.5 14.5s1.3 2 3.5 2 3.5-2 3.5-2M9 9.5h.01M15 9.5h.01';
const CLIP = 'M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9';
const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
export const MAX_TEXT = 2000;

export class Composer {
  /**
   * form: the (empty) composer <form>; send(outboxItem); signal(message) for typing;
   * upload(file) -> Promise of the attachment; notify(text or null): a line above the box.
   */
  constructor(form, { send, signal, upload, notify, maxBytes }) {
    Object.assign(this, { form, send, signal, upload, notify, maxBytes });
    this.typingSince = 0;
    this.idleTimer = null;
    this.build();
  }

  build() {
    this.input = el('textarea', {
      id: 'chat-input', className: 'chat-input', rows: '1', maxlength: String(MAX_TEXT), enterkeyhint: 'send',
      'data-i18n-placeholder': 'widget.composer.placeholder', 'data-i18n-aria-label': 'widget.composer.label',
      placeholder: t('widget.composer.placeholder'), 'aria-label': t('widget.composer.label'),
    });
    this.emojiPanel = el('div', { id: 'emoji-panel', className: 'emoji-panel', role: 'group', hidden: true,
      'data-i18n-aria-label': 'widget.emoji.label', 'aria-label': t('widget.emoji.label') },
    EMOJI.map((emoji) => el('button', { type: 'button', className: 'emoji', text: emoji, dataset: { emoji }, onclick: () => this.insert(emoji) })));
    this.emojiButton = el('button', { id: 'emoji-toggle', type: 'button', className: 'composer-tool', 'aria-expanded': 'false',
      'aria-controls': 'emoji-panel', 'data-i18n-aria-label': 'widget.emoji.open', 'data-i18n-title': 'widget.emoji.open',
      'aria-label': t('widget.emoji.open'), title: t('widget.emoji.open'), onclick: () => this.toggleEmoji() }, icon(SMILE));
    this.fileInput = el('input', { id: 'attach-input', type: 'file', hidden: true, tabindex: '-1',
      accept: [...Object.keys(FILE_TYPES), '.png', '.jpg', '.jpeg', '.gif', '.webp', '.pdf'].join(','), onchange: () => this.picked() });
    this.attachButton = el('button', { id: 'attach-button', type: 'button', className: 'composer-tool',
      'data-i18n-aria-label': 'widget.attach.label', 'data-i18n-title': 'widget.attach.label',
      'aria-label': t('widget.attach.label'), title: t('widget.attach.label'), onclick: () => this.fileInput.click() }, icon(CLIP));
    this.sendButton = el('button', { id: 'chat-send', type: 'submit', className: 'btn btn-primary chat-send', i18n: 'widget.composer.send' });
    this.form.replaceChildren(this.emojiPanel,
      el('div', { className: 'composer-row' }, this.emojiButton, this.attachButton, this.fileInput, this.input, this.sendButton));
    this.form.addEventListener('submit', (event) => { event.preventDefault(); this.submit(); });
    this.emojiPanel.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      event.stopPropagation();  // closes the picker, not the panel
      this.closeEmoji();
      this.emojiButton.focus();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => { this.grow(); this.typed(); });
  }

  setEnabled(enabled) {
    for (const control of [this.input, this.emojiButton, this.attachButton, this.sendButton]) control.disabled = !enabled;
    if (!enabled) this.closeEmoji();
  }

  focus() {
    try { this.input.focus({ preventScroll: true }); } catch (_) { /* hidden */ }
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    this.send({ client_id: newClientId(), text });
    this.input.value = '';
    this.grow();
    this.stopTyping();
    this.closeEmoji();
    this.focus();
  }

  /** The visitor types: say so now and then, and "stopped" after a pause. */
  typed() {
    const now = Date.now();
    if (!this.input.value.trim()) {
      this.stopTyping();
      return;
    }
    if (now - this.typingSince > TYPING_EVERY_MS) {
      if (this.signal({ type: 'typing', typing: true })) this.typingSince = now;
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (this.typingSince) this.signal({ type: 'typing', typing: false });
    this.typingSince = 0;
  }

  grow() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 120)}px`;
  }

  insert(emoji) {
    const { selectionStart: start, selectionEnd: end, value } = this.input;
    this.input.value = value.slice(0, start) + emoji + value.slice(end);
    const at = start + emoji.length;
    this.input.setSelectionRange(at, at);
    this.input.focus();
    this.typed();
  }

  toggleEmoji() {
    const open = this.emojiPanel.hidden;
    this.emojiPanel.hidden = !open;
    this.emojiButton.setAttribute('aria-expanded', String(open));
    if (open) this.emojiPanel.querySelector('button').focus();
  }

  closeEmoji() {
    this.emojiPanel.hidden = true;
    this.emojiButton.setAttribute('aria-expanded', 'false');
  }

  async picked() {
    const file = this.fileInput.files && this.fileInput.files[0];
    this.fileInput.value = '';
    if (!file) return;
    const problem = fileProblem(file, this.maxBytes);
    if (problem) {
      this.notify(problem);
      return;
    }
    this.attachButton.disabled = true;
    this.notify(t('widget.attach.uploading', { name: file.name }), 'info');
    try {
      const attachment = await this.upload(file);
      this.notify(null);
      this.send({ client_id: newClientId(), text: '', attachment_id: attachment.id, attachment });
    } catch (err) {
      this.notify(err.text || t('widget.attach.failed'));
    } finally {
      this.attachButton.disabled = this.input.disabled;
    }
  }
}

function icon(path) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('tool-icon');
  const line = document.createElementNS(ns, 'path');
  line.setAttribute('d', path);
  svg.append(line);
  return svg;
}

/** Why `file` cannot be sent (in the page's language), or null. */
export function fileProblem(file, maxBytes) {
  if (!(file.type in FILE_TYPES) && !EXTENSIONS.test(file.name)) return t('widget.attach.wrong_type');
  if (!file.size) return t('widget.attach.empty');
  if (maxBytes && file.size > maxBytes) {
    return t('widget.attach.too_large', { max: Math.floor(maxBytes / (1024 * 1024)) });
  }
  return null;
}
