// The chat desk on /agent (#chat-desk): the tab strip, the active conversation (messages,
// typing, composer with canned replies and attachments, transfer, end with a disposition) and
// the customer beside it. It shows what chats.js holds and calls back its `actions`.

import { el, t, translate } from '/static/shell.js';
import { CannedPicker } from './chat_canned.js';
import { renderCustomer } from './chat_customer.js';
import { MessageList } from './chat_messages.js';
import { customerLabel, isTyping } from './chat_state.js';
import { renderTabs } from './chat_tabs.js';
import { agentTargets, queueTargets } from './transfer_targets.js';

/** Longest message the composer takes. */
export const MAX_TEXT = 4000;
const ATTACH_TYPES = 'image/png,image/jpeg,image/gif,image/webp,application/pdf';
const STICK_PX = 48;
const ENDED_CAUSES = new Set(['visitor_ended', 'visitor_left', 'gone']);
const AGENT_STATES = new Set(['offline', 'available', 'break', 'reserved', 'on_call', 'wrap_up', 'ringing']);

export class ChatView {
  /** `actions`: select, send, sendFile, retry, draft, typing, stopTyping, transfer, end, endOpen, endDraft,
   * earlier, seen, rerender and session() ({me, dispositions, targets}). */
  constructor(section, actions) {
    this.section = section;
    this.actions = actions;
    this.shownId = null;
    this.stick = true;
    this.anchor = null; // {node, top}: the message kept in place while earlier ones come in above it
    this.customerSig = '';
    this.build();
    this.messages = new MessageList(this.V.list, {
      retry: (clientId) => this.actions.retry(this.shownId, clientId),
      imageLoaded: () => { if (this.stick) this.scrollToEnd(); },
    });
  }

  build() {
    const V = {};
    const ref = (name, node) => { V[name] = node; return node; };
    this.section.replaceChildren(
      ref('tabs', el('div', { className: 'chat-tabs', role: 'tablist', 'data-i18n-aria-label': 'agent.chat.tabs' })),
      el('div', { className: 'chat-main' },
        ref('conv', el('div', { id: 'chat-conv', className: 'chat-conv', role: 'tabpanel' },
          el('header', { className: 'chat-head' },
            el('div', { className: 'chat-who-box' },
              ref('title', el('h2', { id: 'chat-title', className: 'chat-title' })),
              ref('status', el('span', { id: 'chat-status', className: 'chat-status' }))),
            el('div', { className: 'chat-head-actions' },
              ref('transferButton', el('button', { id: 'chat-transfer', type: 'button', className: 'btn btn-secondary',
                'data-i18n': 'agent.chat.transfer', onclick: () => this.openTransfer() })),
              ref('endButton', el('button', { id: 'chat-end', type: 'button', className: 'btn btn-outline-danger',
                'data-i18n': 'agent.chat.end', onclick: () => this.toggleEnd(true) })))),
          ref('endedNote', el('p', { id: 'chat-ended-note', className: 'chat-ended-note', role: 'status', hidden: true })),
          this.buildEndForm(ref),
          ref('log', el('div', { id: 'chat-log', className: 'chat-log', role: 'log', 'aria-live': 'polite',
            onscroll: () => this.scrolled() },
          ref('earlier', el('button', { id: 'chat-earlier', type: 'button', className: 'btn btn-secondary chat-earlier',
            'data-i18n': 'agent.chat.earlier', hidden: true, onclick: () => this.showEarlier() })),
          ref('list', el('ol', { id: 'chat-messages', className: 'chat-messages' })))),
          ref('typing', el('div', { id: 'chat-typing', className: 'chat-typing', 'aria-live': 'polite', hidden: true })),
          this.buildComposer(ref))),
        ref('customer', el('aside', { id: 'chat-customer', className: 'chat-customer', 'data-i18n-aria-label': 'agent.chat.customer.title' }))));
    this.V = V;
    this.picker = new CannedPicker(V.input, V.canned, () => this.typed());
    this.dialog = this.buildTransferDialog();
    translate(this.section);
    translate(this.dialog);
  }

  buildEndForm(ref) {
    return ref('endForm', el('form', { id: 'chat-end-form', className: 'chat-end-form', novalidate: true, hidden: true,
      onsubmit: (event) => this.submitEnd(event) },
    el('label', { className: 'field' }, el('span', { className: 'field-label', 'data-i18n': 'agent.disposition' }),
      ref('disposition', el('select', { id: 'chat-end-disposition', onchange: () => this.keepEndDraft() }))),
    el('label', { className: 'field' }, el('span', { className: 'field-label', 'data-i18n': 'agent.notes' }),
      ref('notes', el('textarea', { id: 'chat-end-notes', rows: '2', maxlength: '4000', 'data-i18n-placeholder': 'agent.chat.end_notes',
        oninput: () => this.keepEndDraft() }))),
    ref('endError', el('p', { className: 'form-error', role: 'alert', hidden: true })),
    el('div', { className: 'chat-end-actions' },
      ref('endCancel', el('button', { type: 'button', className: 'btn btn-secondary', 'data-i18n': 'agent.cancel',
        onclick: () => this.toggleEnd(false) })),
      ref('endGo', el('button', { id: 'chat-end-go', type: 'submit', className: 'btn btn-danger', 'data-i18n': 'agent.chat.end_go' })))));
  }

  buildComposer(ref) {
    const input = ref('input', el('textarea', {
      id: 'chat-input', className: 'chat-input', rows: '2', maxlength: String(MAX_TEXT), 'data-i18n-placeholder': 'agent.chat.placeholder',
      'data-i18n-aria-label': 'agent.chat.message', 'aria-autocomplete': 'list', 'aria-controls': 'chat-canned', 'aria-expanded': 'false',
      oninput: () => this.typed(),
      onkeydown: (event) => this.composerKey(event),
      onblur: () => this.actions.stopTyping(),
    }));
    const file = ref('file', el('input', { id: 'chat-file', type: 'file', accept: ATTACH_TYPES, hidden: true,
      onchange: () => this.fileChosen() }));
    return el('form', { id: 'chat-composer', className: 'chat-composer', novalidate: true, onsubmit: (event) => this.submit(event) },
      ref('canned', el('ul', { id: 'chat-canned', className: 'chat-canned', role: 'listbox', hidden: true })),
      el('div', { className: 'chat-compose-row' },
        ref('attach', el('button', { id: 'chat-attach', type: 'button', className: 'btn btn-secondary chat-attach',
          'data-i18n': 'agent.chat.attach', 'data-i18n-title': 'agent.chat.attach_title', onclick: () => file.click() })),
        file, input,
        ref('sendButton', el('button', { id: 'chat-send', type: 'submit', className: 'btn btn-primary', 'data-i18n': 'agent.chat.send' }))),
      el('p', { className: 'hint chat-hint', 'data-i18n': 'agent.chat.hint' }));
  }

  buildTransferDialog() {
    const kind = el('select', { id: 'chat-transfer-kind', onchange: () => this.fillTargets() },
      el('option', { value: 'agent', 'data-i18n': 'agent.agent' }), el('option', { value: 'queue', 'data-i18n': 'agent.queue' }));
    const target = el('select', { id: 'chat-transfer-target' });
    const error = el('p', { className: 'form-error', role: 'alert', hidden: true });
    const dialog = el('dialog', { id: 'chat-transfer-dialog', className: 'dialog', 'aria-labelledby': 'chat-transfer-title' },
      el('form', { novalidate: true, onsubmit: (event) => this.submitTransfer(event) },
        el('h2', { id: 'chat-transfer-title', 'data-i18n': 'agent.chat.transfer_title' }),
        el('label', { className: 'field' }, el('span', { className: 'field-label', 'data-i18n': 'agent.transfer_to' }), kind),
        el('label', { className: 'field' }, el('span', { className: 'field-label', 'data-i18n': 'agent.chat.transfer_target' }), target),
        error,
        el('div', { className: 'dialog-actions' },
          el('button', { type: 'button', className: 'btn btn-secondary', 'data-i18n': 'agent.cancel', onclick: () => dialog.close() }),
          el('button', { id: 'chat-transfer-go', type: 'submit', className: 'btn btn-primary', 'data-i18n': 'agent.transfer' }))));
    Object.assign(this.V, { transferKind: kind, transferTarget: target, transferError: error });
    document.body.append(dialog);
    return dialog;
  }

  // ------------------------------------------------------------- rendering

  /** Show the tabs of `chats` (a Map id -> chat) and the conversation `activeId`. */
  render(chats, activeId) {
    this.section.hidden = !chats.size;
    renderTabs(this.V.tabs, chats, activeId, (id) => this.actions.select(id));
    const chat = chats.get(activeId) || null;
    if (!chat) { this.shownId = null; return; }
    const switched = chat.id !== this.shownId;
    if (switched) this.switchTo(chat);
    const session = this.actions.session();
    this.V.conv.setAttribute('aria-labelledby', `chat-tab-${chat.id}`);
    this.V.title.textContent = customerLabel(chat.conv) || t('agent.chat.visitor');
    const status = chat.ended ? 'ended' : chat.conv.visitor_online === false ? 'offline' : 'online';
    this.V.status.dataset.status = status;
    this.V.status.textContent = t(`agent.chat.status.${status}`);
    this.renderEnded(chat, session);
    this.V.earlier.hidden = !this.messages.render(chat, session.me);
    this.keepAnchor(chat);
    const typing = isTyping(chat);
    this.V.typing.hidden = !typing;
    this.V.typing.textContent = typing ? t('agent.chat.typing_who', { who: customerLabel(chat.conv) || t('agent.chat.visitor') }) : '';
    for (const control of [this.V.input, this.V.sendButton, this.V.attach, this.V.transferButton]) control.disabled = Boolean(chat.ended);
    this.V.endButton.hidden = !this.V.endForm.hidden;
    this.renderCustomer(chat, session);
    if (!this.anchor && (switched || this.stick)) this.scrollToEnd();
    this.actions.seen(chat.id, this.messages.lastVisibleSeq(this.V.log));
  }

  switchTo(chat) {
    this.picker.close();
    this.anchor = null;
    this.shownId = chat.id;
    this.stick = true;
    this.V.input.value = chat.draft || '';
    this.V.endForm.hidden = !chat.endOpen;
    this.V.endError.hidden = true;
    this.fillDispositions(chat);
    this.customerSig = '';
  }

  renderEnded(chat, session) {
    const cause = chat.ended && ENDED_CAUSES.has(chat.ended.cause) ? chat.ended.cause : 'other';
    this.V.endedNote.hidden = !chat.ended;
    this.V.endedNote.textContent = chat.ended ? t(`agent.chat.ended.${cause}`) : '';
    if (chat.ended && !chat.endOpen) this.toggleEnd(true);
    this.V.endCancel.hidden = Boolean(chat.ended);
    this.V.endGo.disabled = Boolean(chat.closing);
    if (chat.endError) {
      this.V.endError.textContent = chat.endError;
      this.V.endError.hidden = false;
    }
    if (this.V.disposition.options.length !== session.dispositions.length + 1) this.fillDispositions(chat);
  }

  renderCustomer(chat, session) {
    const sig = JSON.stringify([chat.id, chat.conv, typeof chat.contacts === 'string' ? chat.contacts : (chat.contacts || []).length]);
    if (sig === this.customerSig) return;
    this.customerSig = sig;
    renderCustomer(this.V.customer, chat, session.dispositions, () => { this.customerSig = ''; this.actions.rerender(); });
  }

  fillDispositions(chat) {
    const { dispositions } = this.actions.session();
    const select = this.V.disposition;
    select.replaceChildren(el('option', { value: '', text: t(dispositions.length ? 'agent.wrapup.placeholder' : 'agent.wrapup.none') }),
      ...dispositions.map((d) => el('option', { value: d.code, text: d.label || d.code })));
    select.value = (chat.endDraft && chat.endDraft.disposition) || '';
    this.V.notes.value = (chat.endDraft && chat.endDraft.notes) || '';
  }

  /** "Earlier messages": they come in above the first one shown, which stays where it is. */
  showEarlier() {
    const first = this.V.list.firstElementChild;
    this.anchor = first ? { node: first, top: first.offsetTop - this.V.log.scrollTop } : null;
    this.stick = false;
    this.actions.earlier(this.shownId);
  }

  keepAnchor(chat) {
    const anchor = this.anchor;
    if (!anchor) return;
    if (anchor.node.isConnected) this.V.log.scrollTop = anchor.node.offsetTop - anchor.top;
    if (chat.asked === null && !chat.wantEarlier) this.anchor = null; // all that was asked for is in
  }

  scrollToEnd() {
    this.V.log.scrollTop = this.V.log.scrollHeight;
  }

  scrolled() {
    const log = this.V.log;
    this.stick = log.scrollHeight - log.scrollTop - log.clientHeight < STICK_PX;
    if (this.shownId) this.actions.seen(this.shownId, this.messages.lastVisibleSeq(log));
  }

  /** The conversation on screen, for reading receipts once the page is visible again. */
  visibleSeq() {
    return this.shownId ? this.messages.lastVisibleSeq(this.V.log) : 0;
  }

  /** The language changed: rebuild what carries words. */
  relabel() {
    this.messages.clear();
    this.customerSig = '';
    this.shownId = null;
  }

  forget(chatId) {
    this.messages.forget(chatId);
  }

  // ------------------------------------------------------------- composer

  typed() {
    this.actions.draft(this.shownId, this.V.input.value);
    this.picker.update();
    if (this.V.input.value) this.actions.typing(this.shownId);
    else this.actions.stopTyping();
  }

  composerKey(event) {
    if (this.picker.key(event)) return;
    // Enter sends, Shift+Enter is a new line; an input method composing Chinese keeps its Enter.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      this.submit(event);
    }
  }

  submit(event) {
    event.preventDefault();
    const text = this.V.input.value.trim();
    if (!text || !this.shownId) return;
    this.actions.send(this.shownId, text.slice(0, MAX_TEXT));
    this.V.input.value = '';
    this.actions.draft(this.shownId, '');
    this.picker.close();
    this.stick = true;
  }

  fileChosen() {
    const file = this.V.file.files && this.V.file.files[0];
    this.V.file.value = '';
    if (file && this.shownId) this.actions.sendFile(this.shownId, file);
  }

  /** The composer takes the keys; the stage is not scrolled to it (a call panel above stays in view). */
  focusInput() {
    if (!this.V.input.disabled) this.V.input.focus({ preventScroll: true });
  }

  // ------------------------------------------------------------- end and transfer

  toggleEnd(open) {
    this.V.endForm.hidden = !open;
    this.V.endButton.hidden = open;
    this.V.endError.hidden = true;
    this.actions.endOpen(this.shownId, open);
    if (open) this.V.disposition.focus();
  }

  submitEnd(event) {
    event.preventDefault();
    this.V.endError.hidden = true;
    const disposition = this.V.disposition.value;
    const { dispositions } = this.actions.session();
    if (dispositions.length && !disposition) {
      this.V.endError.textContent = t('agent.wrapup.choose');
      this.V.endError.hidden = false;
      this.V.disposition.focus();
      return;
    }
    this.actions.end(this.shownId, disposition || null, this.V.notes.value);
  }

  openTransfer() {
    if (!this.shownId) return;
    this.V.transferKind.value = 'agent';
    this.V.transferError.hidden = true;
    this.fillTargets();
    this.dialog.showModal();
    this.V.transferTarget.focus();
  }

  fillTargets() {
    const { targets, me } = this.actions.session();
    const kind = this.V.transferKind.value;
    const options = kind === 'agent'
      ? agentTargets(targets, me).map((a) => el('option', { value: a.username,
        text: `${a.username} — ${AGENT_STATES.has(a.state) ? t(`agent.state.${a.state}`) : String(a.state || '')}` }))
      : queueTargets(targets).map((name) => el('option', { value: name, text: name }));
    if (!options.length) {
      options.push(el('option', { value: '', disabled: true, text: t(kind === 'agent' ? 'agent.transfer.no_agents' : 'agent.transfer.no_queues') }));
    }
    this.V.transferTarget.replaceChildren(...options);
  }

  submitTransfer(event) {
    event.preventDefault();
    const kind = this.V.transferKind.value;
    const target = this.V.transferTarget.value;
    if (!target) {
      this.V.transferError.textContent = t(`agent.transfer.choose_${kind}`);
      this.V.transferError.hidden = false;
      return;
    }
    if (this.actions.transfer(this.shownId, kind, target)) this.dialog.close();
  }

  /** The form's disposition and notes, kept per chat while the agent switches tabs. */
  keepEndDraft() {
    this.actions.endDraft(this.shownId, { disposition: this.V.disposition.value, notes: this.V.notes.value });
  }
}
