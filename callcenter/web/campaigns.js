// Outbound campaigns (/campaigns, admin and supervisor): the tenant's campaigns with their live
// figures, one campaign's view (start / pause / resume / stop, its figures, contacts and report),
// the editor, and the tenant's do-not-call list. The URL hash says what is shown: #<id> a
// campaign, #<id>/edit its settings, #new a new one. Figures refresh every 2 s while the page is
// visible (a hidden tab asks nothing).

import { api, onLanguageChange, showError, startPage, t, formatTime, tenantZone, hideToast } from '/static/shell.js';
import { h, table, button, confirmAction } from '/static/admin_ui.js';
import { MODES, loadChoices, renderEditor } from '/static/campaigns_form.js';
import { createContacts } from '/static/campaigns_contacts.js';
import { createReport } from '/static/campaigns_report.js';
import { createDnc } from '/static/campaigns_dnc.js';

const REFRESH_MS = 2000;
/** The buttons each status offers (campaigns/outcomes.py TRANSITIONS). */
const ACTIONS = { draft: ['start'], running: ['pause', 'stop'], paused: ['resume', 'stop'], stopped: ['start'], finished: ['start'] };
const STATUSES = ['draft', 'running', 'paused', 'stopped', 'finished'];
/** The figures of a campaign's view, in this order (stats keys). */
const FIGURES = ['contacts', 'left', 'dialed', 'persons', 'machines', 'abandoned', 'abandon_rate', 'busy', 'no_answer', 'failed', 'dnc',
  'agents_busy', 'lines'];

const $ = (id) => document.getElementById(id);
const S = { me: null, campaigns: [], view: null, choices: null, timer: null, ticking: false, detailFor: null };
/** The contacts, report and do-not-call parts, made once the catalogues are in (onReady). */
let parts = null;

const percent = (rate) => (rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)}%`);
const statusLabel = (s) => (STATUSES.includes(s) ? t(`campaigns.status.${s}`) : s);
const modeLabel = (m) => (MODES.includes(m) ? t(`campaigns.mode.${m}`) : m);
const selected = () => S.campaigns.find((c) => S.view && String(c.id) === S.view.id) || null;
const overCap = (c) => c.stats && c.stats.abandon_rate !== null && c.stats.abandon_rate > c.max_abandon_rate;

/** What the hash asks for: {id, edit} (id 'new' for a new campaign), or null for the list alone. */
function viewOf(hash) {
  const [id, what] = decodeURIComponent(hash.replace(/^#/, '')).split('/');
  if (id === 'new') return { id: 'new', edit: true };
  return /^\d+$/.test(id || '') ? { id, edit: what === 'edit' } : null;
}

// ----------------------------------------------------------------- list

function renderList() {
  const rows = S.campaigns.map((c) => {
    const stats = c.stats || {};
    const cells = [h('a', { href: `#${c.id}`, className: 'campaign-link', text: c.name }), modeLabel(c.mode),
      h('span', { className: 'chip campaign-status', 'data-status': c.status, text: statusLabel(c.status) }),
      t('campaigns.list.left_of', { left: stats.left ?? 0, contacts: stats.contacts ?? 0 }), String(stats.dialed ?? 0),
      String(stats.persons ?? 0), h('span', { className: overCap(c) ? 'over-cap' : '', text: percent(stats.abandon_rate) })];
    cells.key = String(c.id);
    return cells;
  });
  const list = table(['campaigns.list.name', 'campaigns.list.mode', 'campaigns.list.status', 'campaigns.list.contacts',
    'campaigns.figure.dialed', 'campaigns.figure.persons', 'campaigns.figure.abandon_rate'], rows, 'campaigns.list.empty',
  { id: 'campaigns-table' });
  for (const row of list.querySelectorAll('tbody tr')) row.classList.toggle('current', S.view && row.dataset.key === S.view.id);
  $('campaigns-list').replaceChildren(list);
}

// ----------------------------------------------------------------- one campaign

async function act(id, action) {
  const c = S.campaigns.find((x) => x.id === id);
  if (!c) return;
  if (action === 'stop' && !(await confirmAction(t('campaigns.confirm_stop', { name: c.name }), 'campaigns.action.stop'))) return;
  try {
    const updated = await api('POST', `/api/campaigns/${c.id}/${action}`);
    S.campaigns = S.campaigns.map((x) => (x.id === updated.id ? updated : x));
    renderList();
    updateDetail();
  } catch (err) { showError(err); }
}

async function remove(id) {
  const c = S.campaigns.find((x) => x.id === id);
  if (!c) return;
  if (!(await confirmAction(t('admin.common.confirm_delete', { what: c.name })))) return;
  try {
    await api('DELETE', `/api/campaigns/${c.id}`);
    location.hash = '';
    await refresh();
  } catch (err) { showError(err); }
}

/** The campaign's view, built once per campaign (and language); updateDetail() refreshes it. */
function buildDetail(c) {
  S.detailFor = c.id;
  $('campaign-head').replaceChildren(
    h('div', { className: 'section-head' },
      h('div', {}, h('h2', { id: 'campaign-title', text: c.name }),
        h('p', { className: 'muted', id: 'campaign-summary' })),
      h('div', { className: 'section-tools', id: 'campaign-actions' })),
    h('dl', { className: 'card figures', id: 'campaign-figures' },
      FIGURES.map((name) => h('div', { dataset: { figure: name } }, h('dt', { i18n: `campaigns.figure.${name}` }), h('dd')))));
  updateDetail();
}

function updateDetail() {
  const c = selected();
  if (!c || S.detailFor !== c.id) return;
  const stats = c.stats || {};
  $('campaign-title').textContent = c.name;
  $('campaign-summary').replaceChildren(
    h('span', { className: 'chip campaign-status', id: 'campaign-status', 'data-status': c.status, text: statusLabel(c.status) }), ' ',
    t('campaigns.detail.summary', { mode: modeLabel(c.mode), target: c.mode === 'agentless' ? (c.flow || '–') : (c.queue || '–'),
      caller_id: c.caller_id || '–' }),
    c.started_at ? ` · ${t('campaigns.detail.started', { time: formatTime(c.started_at, { date: true }) })}` : '');
  const actions = $('campaign-actions');
  if (actions.dataset.status !== c.status) {  // the buttons change with the status only
    actions.dataset.status = c.status;
    actions.replaceChildren(
      ...(ACTIONS[c.status] || []).map((a) => button(`campaigns.action.${a}`, () => act(c.id, a),
        a === 'stop' ? 'btn btn-outline-danger' : 'btn btn-primary', { id: `campaign-${a}` })),
      h('a', { className: 'btn btn-secondary', href: `#${c.id}/edit`, id: 'campaign-edit', i18n: 'admin.common.edit' }),
      button('admin.common.delete', () => remove(c.id), 'btn btn-outline-danger',
        { id: 'campaign-delete', disabled: c.status === 'running' || c.status === 'paused' }));
  }
  for (const name of FIGURES) {
    const dd = $('campaign-figures').querySelector(`[data-figure="${name}"] dd`);
    const value = stats[name];
    dd.textContent = name === 'abandon_rate' ? percent(value) : String(value ?? 0);
    if (name === 'abandon_rate') {
      dd.classList.toggle('over-cap', overCap(c));
      dd.title = t('campaigns.detail.cap', { rate: percent(c.max_abandon_rate) });
    }
  }
}

// ----------------------------------------------------------------- views

async function show() {
  S.view = viewOf(location.hash);
  const c = selected();
  const editing = S.view && S.view.edit && (S.view.id === 'new' || c);
  $('campaign-editor').hidden = !editing;
  $('campaign-detail').hidden = Boolean(editing) || !c;
  renderList();
  if (editing) {
    S.choices = S.choices || await loadChoices();
    renderEditor($('campaign-editor'), {
      campaign: S.view.id === 'new' ? null : c, choicesOf: S.choices, tenantZone: tenantZone(),
      onSaved: async (saved) => { await refresh(); location.hash = `#${saved.id}`; },
      onCancel: () => { location.hash = c ? `#${c.id}` : ''; },
    });
    return;
  }
  $('campaign-editor').replaceChildren();
  if (!c) { S.detailFor = null; return; }
  if (S.detailFor !== c.id) buildDetail(c);
  await Promise.all([parts.contacts.show(c), parts.report.show(c)]);
}

/** The campaigns and their figures again; a running campaign's contacts move too. */
async function refresh() {
  S.campaigns = (await api('GET', '/api/campaigns')).campaigns;
  renderList();
  const c = selected();
  if (!c || S.detailFor !== c.id || $('campaign-detail').hidden) return;
  updateDetail();
  if (c.status === 'running') await parts.contacts.load();
}

async function tick() {
  if (document.hidden || S.ticking || !S.me) return;
  S.ticking = true;
  try { await refresh(); } catch (err) { showError(err); } finally { S.ticking = false; }
}

function relabel() {
  hideToast();
  S.detailFor = null;
  renderList();
  for (const part of Object.values(parts || {})) part.render();
  show().catch(showError);
}

async function onReady(me) {
  S.me = me;
  parts = parts || {
    contacts: createContacts($('campaign-contacts'), { onImported: () => refresh() }),
    report: createReport($('campaign-report')),
    dnc: createDnc($('dnc-section')),
  };
  await Promise.all([refresh(), parts.dnc.load()]);
  await show();
  clearInterval(S.timer);
  S.timer = setInterval(tick, REFRESH_MS);
}

function onSignedOut() {
  S.me = null;
  S.choices = null;
  S.detailFor = null;
  clearInterval(S.timer);
}

$('campaign-new').addEventListener('click', () => { location.hash = '#new'; });
window.addEventListener('hashchange', () => { if (S.me) show().catch(showError); });
document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });
onLanguageChange(relabel);
startPage({ page: 'campaigns', roles: ['admin', 'supervisor'], catalogues: ['campaigns', 'admin'], onReady, onSignedOut });
