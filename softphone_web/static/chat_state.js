// What the agent page knows of one chat (README "Softphone protocol", chat_* messages): the
// conversation, its messages by seq (each once, whatever arrives twice), the agent's messages
// still on their way (by client_id), what is missing and must be paged in. No DOM here.

/** Messages the view shows at first, and how many more each "earlier" click shows. */
export const SHOWN_STEP = 200;
/** The first seq of a conversation: a first message above it means earlier ones are not here yet. */
const FIRST_SEQ = 1;
/** Seconds a visitor's "typing" lasts without a new signal (a lost `typing: false`). */
const TYPING_TTL_S = 15;

/** A conversation as the page holds it; `conv` is the server's CONV. */
export function newChat(conv, readSeq = 0) {
  return {
    id: String(conv.id),
    conv: { ...conv },
    messages: new Map(), // seq -> MSG
    pending: new Map(), // client_id -> {client_id, text, attachment, status: uploading|sending|failed, sentAt, filename}
    more: false, // the server has messages after the last one here
    asked: null, // the `after` of the history request in flight
    askedBefore: new Set(), // `after` values already asked (a gap the server cannot fill stays)
    wantEarlier: false, // the agent asked for the messages before the first one here
    shown: SHOWN_STEP,
    readSeq, // the agent has seen up to here (sent as chat_read)
    typingUntil: 0,
    ended: null, // {cause} once the chat is over for this agent
    draft: '',
    contacts: null, // earlier contacts: null (not asked), 'loading', 'failed' or the list
  };
}

/** Add messages; an agent's message that was pending (same client_id) is pending no longer.
 * Returns how many were new. */
export function mergeMessages(chat, messages) {
  let added = 0;
  for (const message of messages || []) {
    if (!message || typeof message.seq !== 'number') continue;
    if (message.client_id) chat.pending.delete(message.client_id);
    if (!chat.messages.has(message.seq)) added++;
    chat.messages.set(message.seq, message);
  }
  return added;
}

/** Update the conversation's fields (a new `chat` message, or the welcome after a reconnect). */
export function mergeConversation(chat, conv) {
  const readByVisitor = Math.max(Number(chat.conv.visitor_read_seq) || 0, Number(conv.visitor_read_seq) || 0);
  chat.conv = { ...chat.conv, ...conv, visitor_read_seq: readByVisitor };
}

export function sortedMessages(chat) {
  return [...chat.messages.values()].sort((a, b) => a.seq - b.seq);
}

export function lastSeq(chat) {
  let last = 0;
  for (const seq of chat.messages.keys()) last = Math.max(last, seq);
  return last;
}

/** The seq of the agent's latest message: whatever came before it, the agent has seen. */
export function lastAgentSeq(chat) {
  let last = 0;
  for (const m of chat.messages.values()) if (m.sender === 'agent' && m.seq > last) last = m.seq;
  return last;
}

/** The visitor's messages the agent has not seen yet. */
export function unreadCount(chat) {
  let count = 0;
  for (const m of chat.messages.values()) if (m.sender === 'visitor' && m.seq > chat.readSeq) count++;
  return count;
}

/** Whether messages before the first one here exist on the server. */
export function hasFrontGap(chat) {
  if (!chat.messages.size) return false;
  return Math.min(...chat.messages.keys()) > FIRST_SEQ;
}

/**
 * The `after` of the next history request, or null: a hole between two messages here (after a
 * reconnect), the rest after the last one (`more`), or, once the agent asked for them, the ones
 * before the first (paged forward from the start: the protocol pages only forward).
 */
export function nextHistoryAfter(chat) {
  if (chat.asked !== null) return null;
  const seqs = [...chat.messages.keys()].sort((a, b) => a - b);
  const candidates = [];
  if (chat.wantEarlier && hasFrontGap(chat)) candidates.push(0);
  for (let i = 0; i + 1 < seqs.length; i++) if (seqs[i + 1] - seqs[i] > 1) candidates.push(seqs[i]);
  if (chat.more) candidates.push(seqs.length ? seqs[seqs.length - 1] : 0);
  return candidates.find((after) => !chat.askedBefore.has(after)) ?? null;
}

/** A `chat_history` answer: its messages, and whether more follow the conversation's end. */
export function historyArrived(chat, messages, more) {
  const after = chat.asked;
  chat.asked = null;
  const before = lastSeq(chat);
  const added = mergeMessages(chat, messages);
  const pageEnd = Math.max(0, ...(messages || []).map((m) => Number(m.seq) || 0));
  if (pageEnd >= before || after === before) chat.more = Boolean(more) && (messages || []).length > 0;
  if (!added && after !== null) chat.askedBefore.add(after); // nothing new there: do not ask again
  if (!hasFrontGap(chat)) chat.wantEarlier = false;
}

/** The visitor typing (a `chat_typing` message), or no longer. */
export function setTyping(chat, typing, nowMs = Date.now()) {
  chat.typingUntil = typing ? nowMs + TYPING_TTL_S * 1000 : 0;
}

export function isTyping(chat, nowMs = Date.now()) {
  return !chat.ended && chat.typingUntil > nowMs;
}

/** Who the customer is, in a word: the name, else the phone, else null (the view says "Visitor"). */
export function customerLabel(conv) {
  return (conv && (String(conv.name || '').trim() || String(conv.phone || '').trim())) || null;
}

/** An id for a message the agent sends: the server stores and delivers a message once per id. */
export function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
  // randomUUID exists only in secure contexts (https, localhost): a page opened over plain http
  // on a LAN address builds the same v4 UUID from getRandomValues.
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
