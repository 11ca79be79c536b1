// What the chat panel keeps in the visitor's browser, per widget key (localStorage): who the visitor
// is (visitor_id, name, phone for the next form), the open conversation's token, the highest message
// seq the visitor has seen (the launcher's unread count) and the outbox (messages not yet confirmed
// by the server), so a page reopened, or reloaded while offline, carries on where it was.
// A browser that refuses storage (a blocked third-party frame) simply gets no resume.

const PREFIX = 'cc.chat.';

export class ChatStore {
  constructor(widgetKey) {
    this.name = PREFIX + widgetKey;
    this.data = this.read();
  }

  read() {
    try {
      const value = JSON.parse(localStorage.getItem(this.name) || '{}');
      return value && typeof value === 'object' ? value : {};
    } catch (_) {
      return {};
    }
  }

  get(field) {
    return this.data[field];
  }

  /** Merge `fields` (undefined or null removes one) and write the record. */
  set(fields) {
    for (const [field, value] of Object.entries(fields)) {
      if (value === undefined || value === null) delete this.data[field];
      else this.data[field] = value;
    }
    try { localStorage.setItem(this.name, JSON.stringify(this.data)); } catch (_) { /* storage refused or full */ }
  }

  /** The conversation is over: forget it, keep who the visitor is. */
  endConversation() {
    this.set({ token: null, conversation_id: null, seen_seq: null, outbox: null });
  }
}

/** A random id for a message (the server stores a message once per id, however often it is sent).
 * crypto.randomUUID exists only in secure contexts; a node on plain HTTP at a LAN address is not one. */
export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
