// Chats on the agent page (issue 16): the `chat_*` messages of the agent socket (README
// "Softphone protocol") in, the agent's chat actions out. agent.js hands over the messages
// (`chatDesk.handle`), the welcome and the refusals; the rest lives here and in the chat_* modules.

import { ApiError, errorText, socketErrorText, t, toast } from '/static/shell.js';
import {
  customerLabel, hasFrontGap, historyArrived, lastAgentSeq, mergeConversation, mergeMessages, newChat, newClientId,
  nextHistoryAfter, SHOWN_STEP, setTyping,
} from './chat_state.js';
import { renderOffers, tickOffers } from './chat_tabs.js';
import { ChatView } from './chat_view.js';

const READ_KEY = 'softphone.chatRead';
/** The agent stopped typing this long ago: say so to the visitor. */
const TYPING_IDLE_MS = 3000;
/** A message the server has not echoed by then is shown as not sent (Retry sends it again, same id). */
const UNSENT_AFTER_MS = 10_000;
/** An offer the server did not withdraw is dropped this long after its countdown ended. */
const OFFER_GRACE_MS = 3000;
const UPLOAD_ERRORS = new Set(['attachment-too-large', 'attachment-type']);
/** A chat_end refused for these: the chat is not this agent's any more, its tab just closes. */
const GONE_ERRORS = new Set(['no-such-chat', 'not-your-chat']);

const C = {
  ctx: null, // {send, connected, session, onChange} from agent.js
  view: null,
  offersBox: null,
  chats: new Map(), // conversation id -> chat (chat_state.js), in the order they came
  offers: new Map(), // conversation id -> {offer, receivedAt, expiresAt, accepting}
  active: null,
  typingIn: null, // the conversation the agent's "typing" was last sent for
  typingTimer: null,
};

// ----------------------------------------------------------------- read marks (kept across a reload)

function storedReads() {
  try { return JSON.parse(sessionStorage.getItem(READ_KEY) || '{}') || {}; } catch (_) { return {}; }
}

function storeReads() {
  const reads = Object.fromEntries([...C.chats.values()].map((chat) => [chat.id, chat.readSeq]));
  try { sessionStorage.setItem(READ_KEY, JSON.stringify(reads)); } catch (_) { /* private mode */ }
}

// ----------------------------------------------------------------- rendering

function render() {
  if (!C.view) return;
  renderOffers(C.offersBox, C.offers, { accept, decline });
  C.view.render(C.chats, C.active);
}

function changed() {
  render();
  C.ctx.onChange();
}

function tick() {
  const now = Date.now();
  let dirty = false;
  for (const [id, entry] of C.offers) {
    if (now > entry.expiresAt + OFFER_GRACE_MS) { C.offers.delete(id); dirty = true; }
  }
  for (const chat of C.chats.values()) {
    if (chat.typingUntil && chat.typingUntil <= now) { chat.typingUntil = 0; dirty = true; }
    for (const pending of chat.pending.values()) {
      if (pending.status === 'sending' && now - pending.sentAt > UNSENT_AFTER_MS) { pending.status = 'failed'; dirty = true; }
    }
  }
  if (dirty) changed();
  else if (C.offers.size) tickOffers(C.offersBox, C.offers, now);
}

// ----------------------------------------------------------------- from the server

function onOffer(message) {
  const now = Date.now();
  const id = String(message.conversation_id);
  const known = C.offers.get(id);
  C.offers.set(id, { offer: message, receivedAt: known ? known.receivedAt : now,
    expiresAt: now + Math.max(0, Number(message.expires_in) || 0) * 1000, accepting: known ? known.accepting : false });
  changed();
}

/** A conversation the agent now has (accepted, transferred in, or back after a reload). */
function upsertChat(conv, messages, more, agentReadSeq, { open = false } = {}) {
  const id = String(conv.id);
  let chat = C.chats.get(id);
  if (!chat) {
    chat = newChat(conv, Number(storedReads()[id]) || 0);
    C.chats.set(id, chat);
  } else {
    mergeConversation(chat, conv);
  }
  mergeMessages(chat, messages);
  // The page starts at the first message, `more` then says later ones follow; a page of the last
  // messages (earlier ones missing) leaves them to the "Earlier messages" button.
  chat.more = Boolean(more) && !hasFrontGap(chat);
  chat.readSeq = Math.max(chat.readSeq, Number(agentReadSeq) || 0, lastAgentSeq(chat));
  if (['ended', 'closed'].includes(conv.status) && !chat.ended) chat.ended = { cause: 'other' };
  C.offers.delete(id);
  if (open || !C.active || !C.chats.has(C.active)) C.active = id;
  askHistory(chat);
  return chat;
}

function onChat(message) {
  const conv = message.conversation;
  if (!conv || conv.id === undefined) return;
  const offer = C.offers.get(String(conv.id));
  upsertChat(conv, message.messages, message.more, message.agent_read_seq, { open: Boolean(offer && offer.accepting) });
  changed();
  if (offer && offer.accepting) C.view.focusInput();
}

function onChatMessage(message) {
  const chat = C.chats.get(String(message.conversation_id));
  if (!chat || !message.message) return;
  mergeMessages(chat, [message.message]);
  if (message.message.sender === 'visitor') setTyping(chat, false);
  askHistory(chat); // a seq beyond a hole: fetch what is between
  changed();
}

function onEnded(message) {
  const id = String(message.conversation_id);
  const chat = C.chats.get(id);
  if (!chat) return;
  if (message.cause === 'transferred') {
    toast(t('agent.chat.transferred', { who: customerLabel(chat.conv) || t('agent.chat.visitor') }), 'info', 5000);
    removeChat(id);
  } else if (message.cause === 'agent_ended') {
    removeChat(id);
  } else {
    chat.ended = { cause: message.cause || 'other' };
    setTyping(chat, false);
  }
  changed();
}

function onHistory(message) {
  const chat = C.chats.get(String(message.conversation_id));
  if (!chat) return;
  historyArrived(chat, message.messages, message.more);
  askHistory(chat);
  changed();
}

function removeChat(id) {
  C.chats.delete(id);
  C.view.forget(id);
  if (C.typingIn === id) C.typingIn = null;
  if (C.active === id) C.active = C.chats.size ? [...C.chats.keys()][0] : null;
  storeReads();
}

/** Ask for what is missing (one request at a time per conversation). */
function askHistory(chat) {
  if (!C.ctx.connected()) return;
  const after = nextHistoryAfter(chat);
  if (after === null) return;
  chat.asked = after;
  chat.askedBefore.add(after);
  C.ctx.send({ type: 'chat_history', conversation_id: chat.id, after });
}

// ----------------------------------------------------------------- the agent's actions

function accept(id) {
  const entry = C.offers.get(id);
  if (!entry || entry.accepting) return;
  if (C.ctx.send({ type: 'chat_accept', conversation_id: id })) {
    entry.accepting = true;
    render();
  }
}

function decline(id) {
  if (C.ctx.send({ type: 'chat_decline', conversation_id: id })) {
    C.offers.delete(id);
    changed();
  }
}

function select(id) {
  if (!C.chats.has(id) || id === C.active) return;
  stopTyping();
  C.active = id;
  render();
  C.view.focusInput();
}

function sendPending(chat, pending) {
  pending.sentAt = Date.now();
  pending.status = 'sending';
  if (!C.ctx.connected()) return; // sent again once the socket is back (same client_id: stored once)
  const message = { type: 'chat_send', conversation_id: chat.id, text: pending.text, client_id: pending.client_id };
  if (pending.attachment) message.attachment_id = pending.attachment.id;
  C.ctx.send(message);
}

function send(id, text) {
  const chat = C.chats.get(id);
  if (!chat || chat.ended) return;
  stopTyping();
  const pending = { client_id: newClientId(), text, attachment: null, filename: null, status: 'sending', sentAt: Date.now() };
  chat.pending.set(pending.client_id, pending);
  sendPending(chat, pending);
  render();
}

async function sendFile(id, file) {
  const chat = C.chats.get(id);
  if (!chat || chat.ended) return;
  const pending = { client_id: newClientId(), text: '', attachment: null, filename: file.name, status: 'uploading', sentAt: Date.now() };
  chat.pending.set(pending.client_id, pending);
  render();
  try {
    pending.attachment = await upload(chat.id, file);
  } catch (err) {
    chat.pending.delete(pending.client_id);
    const known = err instanceof ApiError && UPLOAD_ERRORS.has(err.errorId);
    toast(known ? t(`agent.chat.upload.${err.errorId}`) : t('agent.chat.upload.failed', { why: errorText(err) }), 'error');
    render();
    return;
  }
  if (C.chats.get(id) !== chat) return; // the chat ended meanwhile
  sendPending(chat, pending);
  render();
}

async function upload(conversationId, file) {
  const form = new FormData();
  form.append('conversation_id', conversationId);
  form.append('file', file, file.name);
  const reply = await fetch('/api/chat/attachments', { method: 'POST', body: form, credentials: 'same-origin',
    headers: { Accept: 'application/json' } });
  let body = null;
  try { body = await reply.json(); } catch (_) { body = null; }
  if (!reply.ok) throw new ApiError(reply.status, body);
  return body;
}

function retry(id, clientId) {
  const chat = C.chats.get(id);
  const pending = chat && chat.pending.get(clientId);
  if (pending && pending.status === 'failed') {
    sendPending(chat, pending);
    render();
  }
}

/** The agent types in conversation `id`: "typing" once, "stopped" after a pause. */
function typing(id) {
  if (!C.ctx.connected()) return;
  if (C.typingIn !== id) {
    stopTyping();
    C.typingIn = id;
    C.ctx.send({ type: 'chat_typing', conversation_id: id, typing: true });
  }
  clearTimeout(C.typingTimer);
  C.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(C.typingTimer);
  const id = C.typingIn;
  C.typingIn = null;
  if (id && C.chats.has(id) && C.ctx.connected()) C.ctx.send({ type: 'chat_typing', conversation_id: id, typing: false });
}

/** The agent sees conversation `id` up to `seq`: tell the visitor (read receipts), once per seq. */
function seen(id, seq) {
  const chat = C.chats.get(id);
  if (!chat || seq <= chat.readSeq || document.visibilityState !== 'visible') return;
  chat.readSeq = seq;
  storeReads();
  if (C.ctx.connected()) C.ctx.send({ type: 'chat_read', conversation_id: id, seq });
}

function transfer(id, kind, target) {
  return C.chats.has(id) && C.ctx.send({ type: 'chat_transfer', conversation_id: id, kind, target });
}

/** End the chat with a disposition (or, once the visitor ended it, give the disposition): the tab
 * closes when the server confirms (`chat_closed`), a refusal leaves it open with the reason. */
function end(id, disposition, notes) {
  const chat = C.chats.get(id);
  if (!chat || chat.closing) return;
  if (C.ctx.send({ type: 'chat_end', conversation_id: id, disposition, notes })) {
    chat.closing = true;
    chat.endError = null;
    render();
  }
}

function earlier(id) {
  const chat = C.chats.get(id);
  if (!chat) return;
  chat.shown += SHOWN_STEP;
  if (hasFrontGap(chat)) chat.wantEarlier = true;
  askHistory(chat);
  render();
}

// ----------------------------------------------------------------- the hooks agent.js calls

export const chatDesk = {
  /** ctx: send(message) -> bool, connected() -> bool, session() -> {me, dispositions, targets}, onChange(). */
  init(ctx) {
    C.ctx = ctx;
    C.offersBox = document.getElementById('chat-offers');
    C.view = new ChatView(document.getElementById('chat-desk'), {
      select, send, sendFile, retry, typing, stopTyping, seen, transfer, end, earlier,
      draft: (id, text) => { const chat = C.chats.get(id); if (chat) chat.draft = text; },
      endOpen: (id, open) => { const chat = C.chats.get(id); if (chat) chat.endOpen = open; },
      endDraft: (id, values) => { const chat = C.chats.get(id); if (chat) chat.endDraft = values; },
      rerender: render,
      session: ctx.session,
    });
    setInterval(tick, 1000);
    document.addEventListener('visibilitychange', () => {
      if (C.active && document.visibilityState === 'visible') seen(C.active, C.view.visibleSeq());
    });
  },

  /** A `chat_*` (or `chat`) message of the agent socket; false when it is not one. */
  handle(message) {
    switch (message.type) {
      case 'chat_offer': onOffer(message); break;
      case 'chat_offer_cancelled':
        C.offers.delete(String(message.conversation_id));
        changed();
        break;
      case 'chat': onChat(message); break;
      case 'chat_message': onChatMessage(message); break;
      case 'chat_typing': {
        const chat = C.chats.get(String(message.conversation_id));
        if (chat) { setTyping(chat, Boolean(message.typing)); render(); }
        break;
      }
      case 'chat_read': {
        const chat = C.chats.get(String(message.conversation_id));
        if (chat) { mergeConversation(chat, { visitor_read_seq: Number(message.seq) || 0 }); render(); }
        break;
      }
      case 'chat_visitor': {
        const chat = C.chats.get(String(message.conversation_id));
        if (chat) { chat.conv.visitor_online = Boolean(message.online); render(); }
        break;
      }
      case 'chat_ended': onEnded(message); break;
      case 'chat_closed':
        if (C.chats.has(String(message.conversation_id))) { removeChat(String(message.conversation_id)); changed(); }
        break;
      case 'chat_history': onHistory(message); break;
      default: return false;
    }
    return true;
  },

  /** The socket's welcome (first connect, reconnect, reload): its `chats` are this agent's
   * conversations; ones the page still shows and the server no longer lists ended meanwhile. */
  welcome(message) {
    for (const chat of C.chats.values()) { // answers lost with the old socket are asked again
      chat.asked = null;
      chat.askedBefore.clear();
    }
    if (Array.isArray(message.chats)) {
      const listed = new Set();
      for (const item of message.chats) {
        if (!item || !item.conversation) continue;
        listed.add(String(item.conversation.id));
        upsertChat(item.conversation, item.messages, item.more, item.agent_read_seq);
      }
      for (const chat of C.chats.values()) if (!listed.has(chat.id) && !chat.ended) chat.ended = { cause: 'gone' };
    }
    if (Array.isArray(message.chat_offers)) {
      C.offers.clear();
      for (const offer of message.chat_offers) onOffer(offer);
    }
    for (const chat of C.chats.values()) {
      if (chat.ended) continue;
      for (const pending of chat.pending.values()) if (pending.status !== 'uploading') sendPending(chat, pending);
      askHistory(chat);
    }
    storeReads();
    changed();
  },

  /** A refused request (`error` with a `ref`): the toast is agent.js's; undo what waited for it. */
  refused(message) {
    const ref = String(message.ref || '');
    if (!ref.startsWith('chat_')) return;
    const id = message.conversation_id !== undefined ? String(message.conversation_id) : null;
    const mine = (key) => id === null || id === key;
    if (ref === 'chat_accept') {
      for (const [key, entry] of C.offers) {
        if (!mine(key)) continue;
        if (message.error_id === 'no-such-chat') C.offers.delete(key);
        else entry.accepting = false;
      }
    }
    for (const chat of C.chats.values()) {
      if (!mine(chat.id)) continue;
      if (ref === 'chat_send') { // the refusal names no client_id: what was on its way did not go
        for (const pending of chat.pending.values()) if (pending.status === 'sending') pending.status = 'failed';
      } else if (ref === 'chat_end' && GONE_ERRORS.has(message.error_id)) {
        removeChat(chat.id); // no longer this agent's (moved on while the page was away)
      } else if (ref === 'chat_end') {
        chat.closing = false;
        chat.endError = socketErrorText('agent', message);
      }
    }
    changed();
  },

  /** Chats or chat offers on the page (the idle panel then stays hidden). */
  busy() {
    return C.chats.size > 0 || C.offers.size > 0;
  },

  /** Signed out: nothing of the session stays. */
  reset() {
    stopTyping();
    for (const id of C.chats.keys()) C.view.forget(id);
    C.chats.clear();
    C.offers.clear();
    C.active = null;
    render();
  },

  relabel() {
    C.view.relabel();
    C.offersBox.replaceChildren();
    render();
  },

  /** For tests and debugging: what the page holds. */
  snapshot() {
    return [...C.chats.values()].map((chat) => ({
      id: chat.id, conversation: chat.conv, ended: chat.ended,
      messages: [...chat.messages.values()].sort((a, b) => a.seq - b.seq),
      pending: [...chat.pending.values()].map((p) => ({ client_id: p.client_id, text: p.text, status: p.status })),
      readSeq: chat.readSeq,
    }));
  },
};
