// The wallboard's campaign tiles (/supervisor): one per running or paused campaign with today's
// figures from GET /api/campaigns/live, asked every 2 s while the page is visible (the queue
// tiles' socket carries the ACD only). The abandon rate turns red above the campaign's cap. The
// section stays hidden while the tenant has no such campaign.

import { api, el, t, translate } from '/static/shell.js';

const REFRESH_MS = 2000;
const SHOWN = new Set(['running', 'paused']);
const MODES = ['preview', 'progressive', 'predictive', 'agentless'];
/** The figures under the big ones: [stats key, catalogue key]. */
const SMALL = [['machines', 'supervisor.campaigns.machines'], ['abandoned', 'supervisor.campaigns.abandoned'],
  ['agents_busy', 'supervisor.campaigns.agents_busy'], ['left', 'supervisor.campaigns.left']];

const $ = (id) => document.getElementById(id);

function percent(rate) {
  return rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)}%`;
}

function tile(c) {
  let node = $('campaign-tiles').querySelector(`[data-campaign="${CSS.escape(String(c.id))}"]`);
  if (node) return node;
  const big = (metric, key) => el('div', { className: 'big' }, el('span', { className: 'value', dataset: { metric } }),
    el('span', { className: 'label', 'data-i18n': key }));
  node = el('article', { className: 'tile card campaign-tile', dataset: { campaign: String(c.id) } },
    el('header', { className: 'tile-head' }, el('h3', { className: 'tile-name' }),
      el('span', { className: 'chip campaign-tile-status' })),
    el('p', { className: 'tile-limits muted campaign-tile-mode' }),
    el('div', { className: 'tile-main' }, big('dialed', 'supervisor.campaigns.dialed'), big('persons', 'supervisor.campaigns.persons'),
      big('abandon_rate', 'supervisor.campaigns.abandon_rate')),
    el('dl', { className: 'tile-figures' }, SMALL.map(([metric, key]) => el('div', {},
      el('dt', { 'data-i18n': key }), el('dd', { dataset: { metric } })))));
  translate(node);
  $('campaign-tiles').append(node);
  return node;
}

function render(campaigns) {
  const shown = campaigns.filter((c) => SHOWN.has(c.status));
  $('campaign-tiles-section').hidden = shown.length === 0;
  const ids = new Set(shown.map((c) => String(c.id)));
  for (const node of $('campaign-tiles').querySelectorAll('[data-campaign]')) if (!ids.has(node.dataset.campaign)) node.remove();
  for (const c of shown) {
    const node = tile(c);
    node.querySelector('.tile-name').textContent = c.name;
    const status = node.querySelector('.campaign-tile-status');
    status.dataset.status = c.status;
    status.textContent = t(`supervisor.campaigns.status.${c.status}`);
    const mode = MODES.includes(c.mode) ? t(`supervisor.campaigns.mode.${c.mode}`) : c.mode;
    const cap = typeof c.max_abandon_rate === 'number' ? c.max_abandon_rate : null;
    node.querySelector('.campaign-tile-mode').textContent = cap === null ? mode
      : `${mode} · ${t('supervisor.campaigns.cap', { rate: percent(cap) })}`;
    const over = cap !== null && c.abandon_rate !== null && c.abandon_rate !== undefined && c.abandon_rate > cap;
    node.dataset.alert = String(over);
    for (const value of node.querySelectorAll('[data-metric]')) {
      const metric = value.dataset.metric;
      value.textContent = metric === 'abandon_rate' ? percent(c.abandon_rate) : String(c[metric] ?? 0);
      value.classList.toggle('crossed', metric === 'abandon_rate' && over);
    }
  }
}

/** Start asking for the tiles' figures; `onError(err)` once per run of failures; returns {stop, relabel}. */
export function startCampaignTiles(onError) {
  let last = [];
  let busy = false;
  let failing = false;
  const poll = async () => {
    if (document.hidden || busy) return;
    busy = true;
    try {
      last = (await api('GET', '/api/campaigns/live')).campaigns || [];
      render(last);
      failing = false;
    } catch (err) {
      if (!failing) onError(err);
      failing = true;
    } finally { busy = false; }
  };
  const timer = setInterval(poll, REFRESH_MS);
  const wake = () => { if (!document.hidden) poll(); };
  document.addEventListener('visibilitychange', wake);
  poll();
  return {
    stop() {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', wake);
      $('campaign-tiles').replaceChildren();
      $('campaign-tiles-section').hidden = true;
    },
    relabel() { render(last); },
  };
}
