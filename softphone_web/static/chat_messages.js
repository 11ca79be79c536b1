// A chat's messages as the agent reads them: the visitor on the left, the agent on the right, the
// bot and the system apart; attachments (images inline, other files as links); on the agent's
// own messages "Sending…", "Not sent" (with Retry) or "Read" once the visitor has seen them.

import { el, formatTime, lang, t } from '/static/shell.js';
import { hasFrontGap, sortedMessages } from './chat_state.js';

const SENDERS = new Set(['visitor', 'agent', 'bot', 'system']);

/** A message's attachment URL, only when it points at this site (the server's own files). */
function ownUrl(value) {
  try {
    const url = new URL(String(value || ''), location.href);
    return url.origin === location.origin ? url.href : null;
  } catch (_) {
    return null;
  }
}

function sizeText(bytes) {
  const n = Number(bytes) || 0;
  const [value, unit] = n >= 1024 * 1024 ? [n / (1024 * 1024), 'megabyte'] : [Math.max(1, n / 1024), 'kilobyte'];
  try {
    return new Intl.NumberFormat(lang(), { style: 'unit', unit, maximumFractionDigits: 1 }).format(value);
  } catch (_) {
    return String(Math.round(value));
  }
}

function attachmentNode(attachment, onImageLoad) {
  if (!attachment) return null;
  const url = ownUrl(attachment.url);
  const name = String(attachment.filename || t('agent.chat.attachment'));
  if (url && String(attachment.content_type || '').startsWith('image/')) {
    const img = el('img', { className: 'chat-image', src: url, alt: name, loading: 'lazy' });
    img.addEventListener('load', onImageLoad);
    return el('a', { className: 'chat-image-link', href: url, target: '_blank', rel: 'noopener', title: name }, img);
  }
  const label = [name, attachment.size ? sizeText(attachment.size) : null].filter(Boolean).join(' · ');
  return url
    ? el('a', { className: 'chat-file', href: url, target: '_blank', rel: 'noopener', text: label })
    : el('span', { className: 'chat-file', text: label });
}

function whoText(message, chat, me) {
  if (message.sender === 'visitor') return String(chat.conv.name || '').trim() || t('agent.chat.visitor');
  if (message.sender === 'bot') return t('agent.chat.bot');
  return message.agent && message.agent !== me ? String(message.agent) : t('agent.chat.you');
}

/** What the line under an agent's message says: sending, not sent, read or nothing. */
function receiptOf(message, chat) {
  if (message.status === 'uploading') return 'uploading';
  if (message.status === 'sending' || message.status === 'failed') return message.status;
  if (message.sender === 'agent' && message.seq <= (Number(chat.conv.visitor_read_seq) || 0)) return 'read';
  return '';
}

function messageNode(message, chat, me, hooks) {
  const sender = SENDERS.has(message.sender) ? message.sender : 'system';
  const dataset = { sender, seq: message.seq !== undefined ? String(message.seq) : '', clientId: message.client_id || '' };
  if (sender === 'system') {
    return el('li', { className: 'chat-msg chat-msg-system', dataset }, el('span', { className: 'chat-system-text', text: String(message.text || '') }));
  }
  const receipt = receiptOf(message, chat);
  const time = message.created_at ? formatTime(message.created_at) : '';
  return el('li', { className: `chat-msg chat-msg-${sender}`, dataset: { ...dataset, receipt } },
    el('div', { className: 'chat-bubble' },
      el('div', { className: 'chat-meta' }, el('span', { className: 'chat-who', text: whoText(message, chat, me) }),
        time ? el('time', { className: 'chat-time', datetime: String(message.created_at), text: time }) : null),
      message.text ? el('div', { className: 'chat-text', text: String(message.text) }) : null,
      attachmentNode(message.attachment, hooks.imageLoaded)),
    receipt ? el('div', { className: 'chat-receipt', dataset: { receipt } },
      el('span', { text: t(`agent.chat.receipt.${receipt}`) }),
      receipt === 'failed' ? el('button', { type: 'button', className: 'chat-retry', text: t('agent.chat.retry'),
        onclick: () => hooks.retry(message.client_id) }) : null) : null);
}

/** Put `nodes` in `parent` in this order, moving only what moved (images keep their pixels). */
function syncChildren(parent, nodes) {
  let cur = parent.firstChild;
  for (const node of nodes) {
    if (node === cur) cur = cur.nextSibling;
    else parent.insertBefore(node, cur);
  }
  while (cur) {
    const next = cur.nextSibling;
    cur.remove();
    cur = next;
  }
}

/** Keeps each conversation's message elements, rebuilding one only when what it shows changed. */
export class MessageList {
  constructor(list, hooks) {
    this.list = list;
    this.hooks = hooks; // {retry(clientId), imageLoaded()}
    this.cache = new Map(); // chat id -> Map(key -> node)
  }

  /** Show `chat`'s last `chat.shown` messages and its pending ones; true when earlier ones exist. */
  render(chat, me) {
    const all = sortedMessages(chat);
    const start = Math.max(0, all.length - chat.shown);
    const pending = [...chat.pending.values()].sort((a, b) => a.sentAt - b.sentAt)
      .map((p) => ({ sender: 'agent', agent: me, text: p.text, client_id: p.client_id, status: p.status,
        attachment: p.attachment || (p.filename ? { filename: p.filename } : null) }));
    const old = this.cache.get(chat.id) || new Map();
    const fresh = new Map();
    const nodes = [...all.slice(start), ...pending].map((message) => {
      const key = message.client_id ? `c:${message.client_id}` : `s:${message.seq}`;
      const sig = JSON.stringify([message.seq, message.text, message.attachment, receiptOf(message, chat), message.created_at]);
      let node = old.get(key);
      if (!node || node.dataset.sig !== sig) {
        node = messageNode(message, chat, me, this.hooks);
        node.dataset.sig = sig;
      }
      fresh.set(key, node);
      return node;
    });
    this.cache.set(chat.id, fresh);
    syncChildren(this.list, nodes);
    return start > 0 || hasFrontGap(chat);
  }

  /** The seq of the last message at least partly inside the scrolled box `log`, or 0. */
  lastVisibleSeq(log) {
    const bottom = log.scrollTop + log.clientHeight;
    const items = [...this.list.children].reverse();
    const seen = items.find((item) => item.dataset.seq && item.offsetTop < bottom);
    return seen ? Number(seen.dataset.seq) : 0;
  }

  forget(chatId) {
    this.cache.delete(chatId);
  }

  /** The language changed: every element is rebuilt on the next render. */
  clear() {
    this.cache.clear();
  }
}
