// The chat strip on /agent: chat offers as cards (accept or decline before the countdown ends)
// and one tab per conversation (customer, unread badge, typing dot, offline or ended marker).

import { el, t } from '/static/shell.js';
import { clock } from './clock.js';
import { customerLabel, isTyping, unreadCount } from './chat_state.js';

/** Offer cards into `box`: `offers` a Map id -> {offer, receivedAt, expiresAt (ms), accepting};
 * handlers {accept(id), decline(id)}. Cards are rebuilt only when their offer changes. */
export function renderOffers(box, offers, handlers) {
  const cards = new Map([...box.children].map((card) => [card.dataset.conversationId, card]));
  const wanted = [...offers.values()].map((entry) => {
    const id = String(entry.offer.conversation_id);
    const sig = JSON.stringify([entry.offer, entry.accepting]);
    const card = cards.get(id);
    return card && card.dataset.sig === sig ? card : offerCard(entry, sig, handlers);
  });
  box.replaceChildren(...wanted);
  box.hidden = !wanted.length;
  tickOffers(box, offers);
}

function offerCard(entry, sig, handlers) {
  const offer = entry.offer;
  const id = String(offer.conversation_id);
  const who = customerLabel(offer) || t('agent.chat.visitor');
  const meta = [
    offer.queue ? el('span', { className: 'meta-item' }, el('span', { className: 'meta-label', text: t('agent.queue') }),
      el('span', { className: 'chip', text: String(offer.queue) })) : null,
    el('span', { className: 'meta-item' }, el('span', { className: 'meta-label', text: t('agent.waited') }),
      el('span', { className: 'mono chat-offer-waited' })),
    offer.phone && offer.name ? el('span', { className: 'meta-item mono', text: String(offer.phone) }) : null,
  ];
  const accept = el('button', { type: 'button', className: 'btn btn-success chat-offer-accept', disabled: entry.accepting,
    text: t(entry.accepting ? 'agent.chat.offer.accepting' : 'agent.chat.offer.accept'), onclick: () => handlers.accept(id) });
  const decline = el('button', { type: 'button', className: 'btn btn-outline-danger chat-offer-decline', disabled: entry.accepting,
    text: t('agent.chat.offer.decline'), onclick: () => handlers.decline(id) });
  return el('article', { className: 'card chat-offer', dataset: { conversationId: id, sig }, 'aria-label': t('agent.chat.offer.title') },
    el('div', { className: 'chat-offer-head' },
      el('span', { className: 'chat-badge', text: t('agent.chat.badge') }),
      el('h2', { className: 'eyebrow', text: t('agent.chat.offer.title') }),
      el('span', { className: 'offer-expiry' }, el('span', { text: t('agent.chat.offer.within') }), ' ',
        el('b', { className: 'chat-offer-countdown' }))),
    el('div', { className: 'offer-progress', 'aria-hidden': 'true' }, el('div', { className: 'chat-offer-bar' })),
    el('div', { className: 'chat-offer-main' },
      el('div', { className: 'chat-offer-who' },
        el('div', { className: 'chat-offer-name', text: who }),
        offer.question ? el('p', { className: 'chat-offer-question', text: String(offer.question) }) : null,
        el('div', { className: 'offer-meta' }, meta)),
      el('div', { className: 'offer-actions' }, accept, decline)));
}

/** The countdowns and waits of the cards in `box` (runs every second). */
export function tickOffers(box, offers, nowMs = Date.now()) {
  for (const card of box.children) {
    const entry = offers.get(card.dataset.conversationId);
    if (!entry) continue;
    const left = Math.max(0, (entry.expiresAt - nowMs) / 1000);
    const total = Math.max(1, (entry.expiresAt - entry.receivedAt) / 1000);
    card.querySelector('.chat-offer-countdown').textContent = clock(Math.ceil(left));
    card.querySelector('.chat-offer-bar').style.transform = `scaleX(${Math.min(1, left / total).toFixed(4)})`;
    card.classList.toggle('is-urgent', left <= 5);
    const waited = (Number(entry.offer.waited) || 0) + (nowMs - entry.receivedAt) / 1000;
    card.querySelector('.chat-offer-waited').textContent = clock(waited);
  }
}

/** One tab per conversation into `strip`; `select(id)` on a click. Arrow keys move between tabs. */
export function renderTabs(strip, chats, activeId, select) {
  const hadFocus = strip.contains(document.activeElement);
  strip.replaceChildren(...[...chats.values()].map((chat) => {
    const active = chat.id === activeId;
    const unread = active ? 0 : unreadCount(chat);
    const offline = !chat.ended && chat.conv.visitor_online === false;
    const label = customerLabel(chat.conv) || t('agent.chat.visitor');
    const tab = el('button', {
      type: 'button', role: 'tab', id: `chat-tab-${chat.id}`, className: 'chat-tab', 'aria-selected': String(active),
      'aria-controls': 'chat-conv', tabindex: active ? '0' : '-1',
      dataset: { conversationId: chat.id, unread: String(unread), typing: String(isTyping(chat)),
        online: String(!offline), ended: String(Boolean(chat.ended)) },
      onclick: () => select(chat.id),
    },
    el('span', { className: 'chat-tab-typing', 'aria-hidden': 'true', hidden: !isTyping(chat) }),
    el('span', { className: 'chat-tab-name', text: label }),
    offline ? el('span', { className: 'chat-tab-flag', text: t('agent.chat.tab.offline') }) : null,
    chat.ended ? el('span', { className: 'chat-tab-flag', text: t('agent.chat.tab.ended') }) : null,
    unread ? el('span', { className: 'chat-tab-unread', 'aria-label': t('agent.chat.tab.unread', { count: unread }),
      text: String(unread) }) : null);
    tab.title = [label, isTyping(chat) ? t('agent.chat.typing') : null, unread ? t('agent.chat.tab.unread', { count: unread }) : null]
      .filter(Boolean).join(' · ');
    return tab;
  }));
  if (hadFocus && strip.querySelector('[aria-selected="true"]')) strip.querySelector('[aria-selected="true"]').focus();
  if (!strip.dataset.wired) {
    strip.dataset.wired = 'true';
    strip.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
      const tabs = [...strip.querySelectorAll('[role="tab"]')];
      const at = tabs.indexOf(document.activeElement);
      if (at < 0) return;
      const next = tabs[(at + (event.key === 'ArrowRight' ? 1 : -1) + tabs.length) % tabs.length];
      next.focus();
      next.click();
      event.preventDefault();
    });
  }
}
