// The visitors' chat panel (issue 16): /chat?key=WIDGETKEY&lang=zh-CN#origin=HOST&page=URL, shown in
// an iframe by widget.js on a tenant's site (or opened on its own). Nobody signs in: the widget key
// names the tenant, and the token the server gives with a conversation is the visitor's only
// credential (kept in localStorage per widget key, so a page reopened in the same browser gets the
// conversation back). Views: the pre-chat form, the offline form, the conversation (then the rating
// card), each built by its own module; this one decides which and wires them to the server.

import { ApiError, api, el, errorText, hasMessage, lang, socketErrorText, startPublicPage, t, translate } from '/static/shell.js';
import { ChatStore } from '/static/chat_store.js';
import { ChatSocket, TOKEN_REFUSED } from '/static/chat_socket.js';
import { ChatLog } from '/static/chat_log.js';
import { Composer } from '/static/chat_composer.js';
import { offlineForm, prechatForm, ratingCard } from '/static/chat_forms.js';

const query = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
const KEY = query.get('key') || '';
const FRAMED = window.parent !== window;
/** The host page's origin (the loader says it): where messages to the loader may go. */
const HOST = FRAMED ? originOf(fragment.get('origin')) : null;
const PAGE_URL = (FRAMED ? fragment.get('page') : location.href) || '';
/** A typing indicator nobody switches off goes away by itself. */
const TYPING_SHOWN_MS = 15000;
const NOTICE_MS = 8000;

const $ = (id) => document.getElementById(id);
const S = {
  info: null,
  store: new ChatStore(KEY),
  socket: null,
  log: null,
  composer: null,
  conversation: {},
  shown: !FRAMED,     // the panel is open on the host page
  ended: false,
  typingTimer: null,
  noticeTimer: null,
};

function originOf(value) {
  try {
    const origin = new URL(value).origin;
    return origin === value ? origin : null;
  } catch (_) {
    return null;
  }
}

// ----------------------------------------------------------------- the loader on the host page

function toHost(type, extra = {}) {
  if (HOST) window.parent.postMessage({ cc: 'chat', type, ...extra }, HOST);
}

function listenToHost() {
  window.addEventListener('message', (event) => {
    if (event.source !== window.parent || event.origin !== HOST || !event.data || event.data.cc !== 'chat') return;
    if (event.data.type === 'shown' || event.data.type === 'hidden') {
      S.shown = event.data.type === 'shown';
      looking();
      if (S.shown) focusView();
    }
  });
  document.addEventListener('visibilitychange', looking);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && FRAMED) toHost('close');
  });
  $('chat-close').hidden = !FRAMED;
  $('chat-close').addEventListener('click', () => toHost('close'));
}

/** Whether the visitor can see the conversation: the panel open and the page in front. */
function looking() {
  if (S.log) S.log.setLooking(S.shown && document.visibilityState === 'visible');
}

function reportUnread() {
  if (S.log) toHost('unread', { count: S.log.unread() });
}

// ----------------------------------------------------------------- views

function setView(view) {
  document.body.dataset.view = view;
  for (const name of ['loading', 'unavailable', 'form', 'conversation']) $(`view-${name}`).hidden = name !== view;
  $('chat-end').hidden = view !== 'conversation' || S.ended;
  if (view !== 'conversation') setSubtitle(null);
}

function focusView() {
  const target = document.body.dataset.view === 'conversation'
    ? (S.ended ? $('chat-after').querySelector('button, textarea') : $('chat-input'))
    : $('view-form').querySelector('input, textarea, button');
  if (target) try { target.focus({ preventScroll: true }); } catch (_) { /* not shown yet */ }
}

function setSubtitle(key, params) {
  const line = $('chat-subtitle');
  line.hidden = !key;
  line.textContent = key ? t(key, params) : '';
}

function notify(text, kind = 'error') {
  const line = $('chat-notice');
  clearTimeout(S.noticeTimer);
  line.hidden = !text;
  line.textContent = text || '';
  line.dataset.kind = kind;
  if (text && kind === 'error') S.noticeTimer = setTimeout(() => { line.hidden = true; }, NOTICE_MS);
}

/** What an error says to the visitor: the widget's words for its error_id, else the shell's. */
function problemText(err) {
  if (err instanceof ApiError && err.errorId && hasMessage(`widget.error.${err.errorId}`)) {
    return t(`widget.error.${err.errorId}`, { max: Math.floor((S.info?.max_attachment_bytes || 0) / (1024 * 1024)) });
  }
  return errorText(err);
}

// ----------------------------------------------------------------- before the chat

function showPrechat(values = {}) {
  const form = prechatForm({
    name: values.name ?? S.store.get('name') ?? '',
    phone: values.phone ?? S.store.get('phone') ?? '',
    onSubmit: startChat,
  });
  if (S.info.greeting) {
    const intro = form.querySelector('#prechat-greeting');
    delete intro.dataset.i18n;
    intro.textContent = S.info.greeting;
  }
  $('view-form').replaceChildren(form);
  setView('form');
  if (S.shown) focusView();
}

function showOffline(values = {}) {
  const form = offlineForm({
    name: values.name ?? S.store.get('name') ?? '',
    phone: values.phone ?? S.store.get('phone') ?? '',
    message: values.message ?? '',
    onSubmit: leaveMessage,
  });
  $('view-form').replaceChildren(form);
  setView('form');
  if (S.shown) focusView();
}

async function startChat(values) {
  S.store.set({ name: values.name, phone: values.phone });
  let reply;
  try {
    reply = await api('POST', '/api/chat/conversations', {
      key: KEY, visitor_id: S.store.get('visitor_id'), ...values, page_url: PAGE_URL, locale: lang(),
    });
  } catch (err) {
    if (err instanceof ApiError && err.errorId === 'chat-offline') {
      showOffline({ ...values, message: values.question });
      return;
    }
    throw new Error(problemText(err));
  }
  S.store.set({ visitor_id: reply.visitor_id, conversation_id: reply.conversation_id });
  openConversation(reply.token);
}

async function leaveMessage(values) {
  try {
    await api('POST', '/api/chat/offline', { key: KEY, ...values, page_url: PAGE_URL });
  } catch (err) {
    throw new Error(problemText(err));
  }
  S.store.set({ name: values.name, phone: values.phone });
  $('view-form').replaceChildren(el('div', { id: 'offline-sent', className: 'chat-done', role: 'status' },
    el('p', { className: 'chat-done-title', i18n: 'widget.offline.sent' }),
    el('p', { className: 'muted', i18n: 'widget.offline.sent_detail' })));
}

/** The visitor's open conversation, found by visitor_id (the token was refused or lost); null if none. */
async function findConversation() {
  const visitorId = S.store.get('visitor_id');
  if (!visitorId) return null;
  try {
    return await api('POST', '/api/chat/conversations', { key: KEY, visitor_id: visitorId });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

// ----------------------------------------------------------------- the conversation

function buildConversation() {
  if (S.log) return;
  S.log = new ChatLog($('chat-log'), {
    attachmentUrl: (file) => {
      const token = S.store.get('token');
      const url = file.url || `/api/chat/attachments/${encodeURIComponent(file.id)}`;
      return token ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : null;
    },
    onSeen: (seq) => {
      S.store.set({ seen_seq: seq });
      if (S.socket) S.socket.signal({ type: 'read', seq });
      reportUnread();
    },
  });
  S.composer = new Composer($('chat-composer'), {
    send: (item) => {
      if (!S.socket) return;  // between a refused token and the conversation found again
      S.log.addPending(item);
      S.socket.send(item);
    },
    signal: (message) => Boolean(S.socket && S.socket.signal(message)),
    upload,
    notify,
    maxBytes: S.info.max_attachment_bytes,
  });
  $('chat-end').addEventListener('click', () => { $('end-confirm').hidden = false; $('end-yes').focus(); });
  $('end-no').addEventListener('click', () => { $('end-confirm').hidden = true; $('chat-input').focus(); });
  $('end-yes').addEventListener('click', () => {
    if (S.socket && S.socket.signal({ type: 'end' })) $('end-confirm').hidden = true;
    else notify(t('widget.error.not_connected'));
  });
}

function openConversation(token, { after = 0, outbox = null } = {}) {
  S.store.set({ token });
  buildConversation();
  S.ended = false;
  $('chat-after').replaceChildren();
  $('chat-composer').hidden = false;
  S.composer.setEnabled(true);
  S.log.seenSeq = Math.max(S.log.seenSeq, Number(S.store.get('seen_seq')) || 0);
  const pending = outbox || S.store.get('outbox') || [];
  for (const item of pending) S.log.addPending(item);
  setView('conversation');
  looking();
  S.socket = new ChatSocket({
    token, after, outbox: pending,
    on: {
      state: showConnection,
      welcome,
      message: (message) => {
        if (S.log.add(message) && message.sender !== 'visitor') {
          if (message.sender === 'agent') showTyping(false);
          reportUnread();
        }
      },
      event: onEvent,
      outbox: (items) => S.store.set({ outbox: items.length ? items : null }),
      gone,
    },
  });
  S.socket.start();
  if (S.shown) focusView();
}

function showConnection(state) {
  const line = $('chat-connection');
  const key = { connecting: 'widget.connection.connecting', reconnecting: 'widget.connection.reconnecting' }[state];
  line.hidden = !key;
  line.dataset.state = state;
  if (key) { line.dataset.i18n = key; line.textContent = t(key); }
}

function welcome(message) {
  if (message.agent_read_seq) S.log.setRead(message.agent_read_seq);
  if (S.log.seenSeq) S.socket.signal({ type: 'read', seq: S.log.seenSeq });
  showConversationStatus(message.conversation || {});
}

/** status: bot (the FAQ bot answers), queued (position in line), active (agent), ended (rating_asked:
 * an agent had the chat and it is not rated yet). */
function showConversationStatus(conversation) {
  S.conversation = { ...S.conversation, ...conversation };
  const { status, agent, position } = S.conversation;
  if (status === 'ended') {
    setSubtitle('widget.status.ended');
    if (!S.ended) ended(S.conversation.rating_asked);
  } else if (agent && status === 'active') setSubtitle('widget.status.agent', { agent });
  else if (status === 'bot') setSubtitle('widget.status.bot');
  else if (position) setSubtitle('widget.status.waiting', { position });
  else setSubtitle('widget.status.connecting_agent');
}

function onEvent(message) {
  switch (message.type) {
    case 'typing': showTyping(Boolean(message.typing)); break;
    case 'read': S.log.setRead(message.seq); break;
    case 'status': showConversationStatus(message); break;
    case 'ended': break;  // the status that follows says whether to rate
    case 'rated': finish(true); break;
    case 'error': notify(socketErrorText('widget', message)); break;
    default: break;
  }
}

function showTyping(typing) {
  clearTimeout(S.typingTimer);
  $('chat-typing').hidden = !typing || S.ended;
  if (typing) S.typingTimer = setTimeout(() => { $('chat-typing').hidden = true; }, TYPING_SHOWN_MS);
}

/** The conversation is over (the server's system message said why): the rating card when `rate`, else the end. */
function ended(rate) {
  S.ended = true;
  showTyping(false);
  S.composer.setEnabled(false);
  $('chat-composer').hidden = true;
  $('end-confirm').hidden = true;
  $('chat-end').hidden = true;
  if (!rate) {
    finish(false);
    return;
  }
  $('chat-after').replaceChildren(ratingCard({
    onSubmit: ({ rating, comment }) => {
      if (!S.socket || !S.socket.signal({ type: 'rate', rating, comment })) throw new Error(t('widget.error.not_connected'));
    },
    onSkip: () => finish(false),
  }));
  if (S.shown) focusView();
}

/** Thanks, and a new chat when the visitor wants one; the old conversation is forgotten. */
function finish(rated) {
  if (S.socket) S.socket.stop();
  S.socket = null;
  S.store.endConversation();
  $('chat-after').replaceChildren(el('div', { id: 'chat-done', className: 'chat-done', role: 'status' },
    el('p', { className: 'chat-done-title', i18n: rated ? 'widget.rating.thanks' : 'widget.done.title' }),
    el('button', { id: 'chat-new', type: 'button', className: 'btn btn-secondary', i18n: 'widget.done.new', onclick: newChat })));
  showConnection('open');
}

async function newChat() {
  S.log.clear();
  S.conversation = {};
  S.ended = false;
  $('chat-after').replaceChildren();
  await loadInfo();
  if (S.info) (S.info.online ? showPrechat : showOffline)();
}

/** The token was refused (expired) or the conversation is gone. */
async function gone(code) {
  const old = S.socket;
  S.socket = null;
  if (S.ended) return;  // the transcript and the rating card stay; rating now says "not connected"
  S.store.set({ token: null });
  let found = null;
  if (code === TOKEN_REFUSED) {
    try { found = await findConversation(); } catch (_) { found = null; }
  }
  if (found && String(found.conversation_id) === String(S.store.get('conversation_id'))) {
    openConversation(found.token, { after: old ? old.cursor : 0, outbox: old ? old.outbox : [] });
    return;
  }
  S.store.endConversation();
  S.log.clear();
  S.conversation = {};
  if (found) {
    S.store.set({ conversation_id: found.conversation_id });
    openConversation(found.token);
    return;
  }
  notify(t('widget.error.conversation_gone'));
  (S.info.online ? showPrechat : showOffline)();
}

async function upload(file) {
  const body = new FormData();
  body.append('file', file, file.name);
  let reply;
  try {
    reply = await fetch('/api/chat/attachments', { method: 'POST', headers: { Authorization: `Bearer ${S.store.get('token')}` }, body });
  } catch (err) {
    throw Object.assign(new Error('network'), { text: t('shell.error.network') });
  }
  const data = await reply.json().catch(() => null);
  if (!reply.ok) throw Object.assign(new Error('refused'), { text: problemText(new ApiError(reply.status, data)) });
  return data;
}

// ----------------------------------------------------------------- start

async function loadInfo() {
  try {
    S.info = await api('GET', `/api/chat/widget/${encodeURIComponent(KEY)}`);
    return true;
  } catch (err) {
    S.info = null;
    $('unavailable-text').dataset.i18n = err instanceof ApiError ? 'widget.unavailable' : 'widget.unreachable';
    translate($('view-unavailable'));
    setView('unavailable');
    if (err instanceof ApiError) toHost('unavailable');
    else window.addEventListener('online', () => location.reload(), { once: true });
    return false;
  }
}

async function main() {
  await startPublicPage({ language: query.get('lang'), catalogues: ['widget'] });
  document.title = t('widget.title');
  listenToHost();
  if (!await loadInfo()) return;
  if (S.info.tenant) $('chat-title').textContent = S.info.tenant;
  toHost('ready', { labels: { open: t('widget.launcher.open'), close: t('widget.launcher.close'), title: t('widget.title') } });
  const token = S.store.get('token');
  if (token) {
    openConversation(token);
    return;
  }
  let found = null;
  try { found = await findConversation(); } catch (_) { found = null; }
  if (found) {
    S.store.set({ conversation_id: found.conversation_id });
    openConversation(found.token);
  } else if (S.info.online) {
    showPrechat();
  } else {
    showOffline();
  }
}

main().catch((err) => {
  console.error(err);
  setView('unavailable');
});
