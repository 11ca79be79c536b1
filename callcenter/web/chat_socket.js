// The visitor's connection to one conversation (WS /api/chat/socket?token=T&after=N), built to
// survive a mobile network: every message carries a server-assigned increasing seq; after a drop the
// socket comes back with exponential backoff and asks for what came after the last seq it holds
// (the welcome's first 100, then `history` pages until `more` is false). What the visitor sends goes
// through an outbox: each message has a client_id, stays in the outbox until the server's echo
// (the stored message, with its seq) comes back, and is sent again after every reconnect; the server
// stores and delivers a client_id once, so a message sent twice is never shown twice.
//
// No DOM here: the page gives callbacks and renders.

/** Reconnect delays: 0.5 s doubling to 10 s, each drawn between half and all of it (jitter). */
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
/** A ping every PING_EVERY_MS (the server drops a visitor silent for 30 s; each ping is answered), and
 * a socket the server has not spoken on for SILENT_MS is taken for dead (a phone's network gone quiet). */
const PING_EVERY_MS = 10000;
const SILENT_MS = 25000;
/** Close codes after which coming back is pointless. */
export const TOKEN_REFUSED = 4401;
export const CONVERSATION_GONE = 4404;

export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return Math.max(BACKOFF_MIN_MS, ceiling / 2 + (random() * ceiling) / 2);
}

export class ChatSocket {
  /**
   * token: the visitor's conversation token; after: the last seq the page already holds (0: none);
   * outbox: messages not yet confirmed ({client_id, text, attachment_id?, attachment?});
   * on: {state(s) 'connecting'|'open'|'reconnecting'|'gone', welcome(welcome message), message(msg),
   *      event(msg) for typing/read/status/ended/rated/error, outbox(items), gone(closeCode)}.
   */
  constructor({ token, after = 0, outbox = [], on }) {
    this.token = token;
    this.cursor = after;        // the seq to resume after: everything up to it has been received
    this.paging = false;        // history pages still to come: live messages may be ahead of the cursor
    this.liveMax = 0;           // the highest live seq received while paging
    this.outbox = outbox.slice();
    this.on = on;
    this.ws = null;
    this.attempt = 0;
    this.welcomed = false;
    this.stopped = false;
    this.retryTimer = null;
    this.pingTimer = null;
    this.silenceTimer = null;
    this.wake = () => { if (!this.welcomed && !this.stopped) this.reconnectNow(); };
    this.drop = () => { if (this.ws) this.lost(); };
    window.addEventListener('online', this.wake);
    window.addEventListener('offline', this.drop);  // do not wait for TCP to notice
    document.addEventListener('visibilitychange', this.wake);
  }

  start() {
    this.open('connecting');
  }

  get connected() {
    return this.welcomed && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  open(state) {
    this.on.state(state);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/api/chat/socket?token=${encodeURIComponent(this.token)}&after=${this.cursor}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (_) {
      this.retry();
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    ws.addEventListener('open', () => { if (ws === this.ws) this.heard(); });
    ws.addEventListener('message', (event) => { if (ws === this.ws) this.received(event.data); });
    ws.addEventListener('close', (event) => { if (ws === this.ws) this.closed(event.code); });
    // 'error' is always followed by 'close'
  }

  received(raw) {
    let msg;
    try { msg = JSON.parse(raw); } catch (_) { return; }
    this.heard();
    switch (msg.type) {
      case 'welcome': this.welcome(msg); break;
      case 'history': this.page(msg); break;
      case 'message': this.live(msg.message); break;
      case 'pong': break;
      default: this.on.event(msg);
    }
  }

  welcome(msg) {
    this.welcomed = true;
    this.attempt = 0;
    this.on.state('open');
    this.on.welcome(msg);
    this.page(msg);
    // Whatever the server already had came back above (and left the outbox); the rest goes again, in order.
    for (const item of this.outbox) this.write({ type: 'send', ...wire(item) });
  }

  /** A page of messages after the cursor (the welcome's or a history answer), oldest first. */
  page(msg) {
    const messages = msg.messages || [];
    for (const message of messages) this.deliver(message);
    if (messages.length) this.cursor = Math.max(this.cursor, messages[messages.length - 1].seq);
    this.paging = Boolean(msg.more) && messages.length > 0;
    if (this.paging) this.write({ type: 'history', after: this.cursor });
    else this.cursor = Math.max(this.cursor, this.liveMax);
  }

  live(message) {
    if (!message) return;
    this.deliver(message);
    if (this.paging) this.liveMax = Math.max(this.liveMax, message.seq);
    else this.cursor = Math.max(this.cursor, message.seq);
  }

  deliver(message) {
    if (message.client_id) {
      const before = this.outbox.length;
      this.outbox = this.outbox.filter((item) => item.client_id !== message.client_id);
      if (this.outbox.length !== before) this.on.outbox(this.outbox);
    }
    this.on.message(message);
  }

  /** Queue a message of the visitor's; it goes now if the socket is up, else after the reconnect. */
  send(item) {
    this.outbox.push(item);
    this.on.outbox(this.outbox);
    if (this.connected) this.write({ type: 'send', ...wire(item) });
  }

  /** typing, read, end, rate: only meaningful now; false when not connected. */
  signal(message) {
    if (!this.connected) return false;
    this.write(message);
    return true;
  }

  write(message) {
    try { this.ws.send(JSON.stringify(message)); } catch (_) { /* closing: the outbox keeps what matters */ }
  }

  /** Anything from the server shows the connection lives; long silence means it does not. */
  heard() {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.lost(), SILENT_MS);
    if (!this.pingTimer) this.pingTimer = setInterval(() => this.write({ type: 'ping' }), PING_EVERY_MS);
  }

  closed(code) {
    this.ws = null;
    this.welcomed = false;
    this.quiet();
    if (code === TOKEN_REFUSED || code === CONVERSATION_GONE) {
      this.stop();
      this.on.state('gone');
      this.on.gone(code);
      return;
    }
    this.retry();
  }

  /** The connection is dead (offline, or silent): come back without waiting for TCP to notice. */
  lost() {
    this.discard();
    this.retry();
  }

  /** Stop listening to the current socket and close it. */
  discard() {
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    this.quiet();
    if (ws) try { ws.close(1000); } catch (_) { /* already closing */ }
  }

  retry() {
    if (this.stopped) return;
    this.on.state('reconnecting');
    if (navigator.onLine === false) return;  // no network for sure: the 'online' event brings it back
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open('reconnecting'), backoffDelay(this.attempt));
    this.attempt += 1;
  }

  reconnectNow() {
    if (this.ws && this.ws.readyState === WebSocket.CONNECTING) return;
    if (document.visibilityState === 'hidden' || navigator.onLine === false) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.discard();
    this.open('reconnecting');
  }

  quiet() {
    clearInterval(this.pingTimer);
    clearTimeout(this.silenceTimer);
    this.pingTimer = null;
  }

  /** For good: the conversation is over or gone. */
  stop() {
    this.stopped = true;
    this.quiet();
    clearTimeout(this.retryTimer);
    window.removeEventListener('online', this.wake);
    window.removeEventListener('offline', this.drop);
    document.removeEventListener('visibilitychange', this.wake);
    this.discard();
  }
}

/** An outbox item as the server wants it. */
function wire(item) {
  const out = { text: item.text || '', client_id: item.client_id };
  if (item.attachment_id) out.attachment_id = item.attachment_id;
  return out;
}
