// The customer beside a chat: what the visitor gave in the pre-chat form (name, phone, question),
// the page they chat from, and their earlier calls and chats with the same phone
// (GET /api/contacts/history?phone=...).

import { api, el, formatTime, t } from '/static/shell.js';
import { clock } from './clock.js';

const SEPARATORS = /[\s().-]/g;
const PHONE = /^\+?[0-9]{3,32}$/;

/** The phone as the history API takes it, or null when there is none worth asking about. */
function phoneOf(conv) {
  const phone = String((conv && conv.phone) || '').replace(SEPARATORS, '');
  return PHONE.test(phone) ? phone : null;
}

/** Only web pages become links (a visitor's page URL is theirs to make up). */
function safeUrl(value) {
  try {
    const url = new URL(String(value));
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

function row(labelKey, value) {
  return value ? [el('dt', { text: t(labelKey) }), el('dd', {}, value)] : [];
}

/** Fill `box` with the conversation's customer; `chat.contacts` caches the earlier contacts,
 * fetched on first show; `rerender()` runs when they arrive. */
export function renderCustomer(box, chat, dispositions, rerender) {
  const conv = chat.conv;
  const url = safeUrl(conv.page_url);
  const page = url ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer', className: 'chat-page-url',
    title: url, text: url }) : (conv.page_url ? String(conv.page_url) : null);
  const details = el('dl', { className: 'chat-details' },
    row('agent.chat.customer.name', conv.name ? String(conv.name) : null),
    row('agent.chat.customer.phone', conv.phone ? el('span', { className: 'mono', text: String(conv.phone) }) : null),
    row('agent.chat.customer.question', conv.question ? el('span', { className: 'chat-question', text: String(conv.question) }) : null),
    row('agent.chat.customer.page', page),
    row('agent.chat.customer.queue', conv.queue ? el('span', { className: 'chip', text: String(conv.queue) }) : null),
    row('agent.chat.customer.started', conv.created_at ? formatTime(conv.created_at, { date: true }) : null));
  if (!details.childElementCount) details.append(el('dd', { className: 'muted', text: t('agent.chat.customer.none') }));
  box.replaceChildren(
    el('h3', { className: 'chat-side-title', text: t('agent.chat.customer.title') }),
    details,
    el('h3', { className: 'chat-side-title', text: t('agent.chat.contacts.title') }),
    contactsList(chat, dispositions, rerender));
}

function contactsList(chat, dispositions, rerender) {
  const phone = phoneOf(chat.conv);
  const note = (key) => el('p', { className: 'chat-contacts-note muted', text: t(key) });
  if (!phone) return note('agent.chat.contacts.no_phone');
  if (chat.contacts === null) {
    chat.contacts = 'loading';
    api('GET', `/api/contacts/history?phone=${encodeURIComponent(phone)}`)
      .then((rows) => { chat.contacts = Array.isArray(rows) ? rows.filter((r) => r && r.id !== chat.id) : []; })
      .catch(() => { chat.contacts = 'failed'; })
      .finally(rerender);
  }
  if (chat.contacts === 'loading') return note('agent.chat.contacts.loading');
  if (chat.contacts === 'failed') return note('agent.chat.contacts.failed');
  if (!chat.contacts.length) return note('agent.chat.contacts.empty');
  const labels = new Map((dispositions || []).map((d) => [d.code, d.label || d.code]));
  return el('ul', { className: 'chat-contacts' }, chat.contacts.map((contact) => {
    const channel = contact.channel === 'chat' ? 'chat' : 'voice';
    const sub = [contact.queue, contact.agent, contact.duration !== null && contact.duration !== undefined
      ? clock(contact.duration) : null].filter(Boolean).join(' · ');
    const result = contact.disposition ? labels.get(contact.disposition) || contact.disposition : null;
    return el('li', { dataset: { contactId: String(contact.id), channel } },
      el('div', { className: 'chat-contact-line' },
        el('span', { className: `chip chat-channel chat-channel-${channel}`, text: t(`agent.chat.contacts.${channel}`) }),
        el('span', { className: 'chat-contact-when', text: formatTime(contact.received_at, { date: true }) })),
      sub ? el('div', { className: 'history-sub', text: sub }) : null,
      result ? el('span', { className: 'chip chip-result', text: result }) : null);
  }));
}
