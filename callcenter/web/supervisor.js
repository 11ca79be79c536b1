// Supervisor wallboard: one WebSocket (/api/supervisor/ws) pushing snapshots of the tenant's
// queues and agents (Amazon Connect metric names), tiles per queue that turn red when a threshold
// is crossed (with a browser notification), the agents' table with their state and listen /
// whisper / barge, the waiting calls with "serve next" and "move to". No polling for the ACD (the
// campaign tiles, supervisor_campaigns.js, ask every 2 s). Sign-in, header,
// language and errors come from the page shell (/static/shell.js).

import { Monitor } from './monitor.js';
import { api, onLanguageChange, showError, showSignIn, startPage, t, translate } from '/static/shell.js';
import { startCampaignTiles } from '/static/supervisor_campaigns.js';
import { startCsat } from '/static/supervisor_csat.js';

const $ = (id) => document.getElementById(id);
const S = { ws: null, gen: 0, backoff: 500, timer: null, snap: null, receivedAt: 0, alerts: new Map(), editing: null,
  breakReasons: [], campaigns: null, csat: null };
window.wallboard = S;

function send(message) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(JSON.stringify(message));
}

const monitor = new Monitor(send, {
  bar: $('monitor-bar'), who: $('monitor-who'), state: $('monitor-state'), error: $('monitor-error'),
  leave: $('monitor-leave'), audio: $('monitor-audio'),
  buttons: { listen: $('monitor-listen'), whisper: $('monitor-whisper'), barge: $('monitor-barge') },
});
S.monitor = monitor;

// ----------------------------------------------------------------- socket

function setConn(ok) {
  $('conn').dataset.ok = String(ok);
  S.connKey = ok ? 'supervisor.conn.live' : 'supervisor.conn.reconnecting';
  $('conn-text').textContent = t(S.connKey);
}

function connect() {
  const gen = ++S.gen;
  clearTimeout(S.timer);
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/supervisor/ws`);
  S.ws = ws;
  monitor.reset();
  ws.onmessage = (event) => {
    if (gen !== S.gen) return;
    const message = JSON.parse(event.data);
    if (message.type === 'hello') { S.breakReasons = message.break_reasons || []; monitor.handle(message); return; }
    if (message.type !== 'snapshot') { monitor.handle(message); return; }
    S.backoff = 500;
    const first = !S.snap;
    S.snap = message;
    S.receivedAt = Date.now() / 1000;
    setConn(true);
    render();
    if (first) window.dispatchEvent(new Event('wallboard-snapshot'));  // the day charts start on it
  };
  ws.onclose = (event) => {
    if (gen !== S.gen) return;
    if (event.code === 4401) { showSignIn('shell.login.session_ended'); return; }
    if (event.code === 4403) { showSignIn('supervisor.error.not_supervisor'); return; }
    setConn(false);
    S.timer = setTimeout(connect, S.backoff);
    S.backoff = Math.min(S.backoff * 2, 5000);
  };
}

// ----------------------------------------------------------------- rendering

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0'), ss = String(r).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function elapsed() { return Date.now() / 1000 - S.receivedAt; }

function tileFor(name) {
  let tile = document.querySelector(`.tile[data-queue="${CSS.escape(name)}"]`);
  if (tile) return tile;
  tile = $('tile-template').content.firstElementChild.cloneNode(true);
  tile.dataset.queue = name;
  tile.querySelector('.tile-name').textContent = name;
  translate(tile);
  const form = tile.querySelector('.tile-form');
  tile.querySelector('.tile-edit').addEventListener('click', () => {
    const q = S.snap.queues.find((x) => x.queue === name);
    form.age.value = q && q.thresholds.OLDEST_CONTACT_AGE !== null ? q.thresholds.OLDEST_CONTACT_AGE : '';
    form.sl.value = q && q.thresholds.SERVICE_LEVEL !== null ? q.thresholds.SERVICE_LEVEL : '';
    form.hidden = false;
  });
  tile.querySelector('.tile-cancel').addEventListener('click', () => { form.hidden = true; });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {
      OLDEST_CONTACT_AGE: form.age.value ? Number(form.age.value) : null,
      SERVICE_LEVEL: form.sl.value ? Number(form.sl.value) : null,
    };
    try {
      await api('PUT', `/api/supervisor/thresholds/${encodeURIComponent(name)}`, body);
      form.hidden = true;
    } catch (err) { showError(err); }
  });
  $('tiles').append(tile);
  return tile;
}

function render() {
  const snap = S.snap;
  if (!snap) return;
  const names = new Set(snap.queues.map((q) => q.queue));
  $('tiles').querySelectorAll('.tile').forEach((tile) => { if (!names.has(tile.dataset.queue)) tile.remove(); });
  for (const q of snap.queues) {
    const tile = tileFor(q.queue);
    for (const el of tile.querySelectorAll('[data-metric]')) {
      const key = el.dataset.metric, value = q.metrics[key];
      if (key === 'OLDEST_CONTACT_AGE') el.textContent = value === null ? '–' : duration(value + elapsed());
      else if (key === 'SERVICE_LEVEL') el.textContent = value === null ? '–' : `${Math.round(value)}%`;
      else el.textContent = String(value);
      el.classList.toggle('crossed', q.breaches.includes(key));
    }
    tile.dataset.alert = String(q.alert);
    const th = q.thresholds, limits = [];
    if (th.OLDEST_CONTACT_AGE !== null) limits.push(t('supervisor.limits.age', { seconds: th.OLDEST_CONTACT_AGE }));
    if (th.SERVICE_LEVEL !== null) limits.push(t('supervisor.limits.sl', { percent: th.SERVICE_LEVEL, seconds: q.sl_threshold }));
    tile.querySelector('.tile-limits').textContent = limits.length
      ? t('supervisor.limits.some', { limits: limits.join(t('supervisor.list_separator')) }) : t('supervisor.limits.none');
    notify(q);
  }
  if (S.csat) S.csat.paint();  // tiles made just now get their CSAT too
  renderAgents();
}

function notify(q) {
  const before = S.alerts.get(q.queue) || false;
  S.alerts.set(q.queue, q.alert);
  if (!q.alert || before) return;
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const what = q.breaches.map((b) => (b === 'OLDEST_CONTACT_AGE'
    ? t('supervisor.notify.waited', { time: duration(q.metrics.OLDEST_CONTACT_AGE) })
    : t('supervisor.notify.sl', { percent: Math.round(q.metrics.SERVICE_LEVEL) }))).join(t('supervisor.list_separator'));
  try {
    new Notification(t('supervisor.notify.title', { queue: q.queue }), { body: what, tag: `queue-${q.queue}` });
  } catch (_) { /* not allowed here */ }
}

const STATES = new Set(['offline', 'available', 'reserved', 'on_call', 'wrap_up', 'break']);

function stateLabel(state) {
  return STATES.has(state) ? t(`supervisor.state.${state}`) : state;
}

/** One row per item of `items` in `tbody`, keyed by `key(item)`: made once by `create`, refreshed
 * by `update` on every snapshot; rows of items gone are removed. */
function syncRows(tbody, items, key, create, update) {
  const rows = new Map([...tbody.querySelectorAll('tr')].map((row) => [row.dataset.key, row]));
  for (const item of items) {
    let row = rows.get(key(item));
    if (!row) {
      row = document.createElement('tr');
      row.dataset.key = key(item);
      create(row, item);
      tbody.append(row);
    }
    rows.delete(key(item));
    update(row, item);
  }
  rows.forEach((row) => row.remove());
}

/** The options of a select, replaced only when they change (an open menu stays open). */
function setOptions(select, options) {
  const key = options.map((o) => o[0]).join('|');
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
}

function renderAgents() {
  const agents = S.snap.agents;
  $('no-agents').hidden = agents.length > 0;
  syncRows($('agent-rows'), agents, (a) => a.agent_id, (row, a) => {
    row.dataset.agent = a.agent_id;
    row.innerHTML = '<td class="a-name"></td><td><span class="chip a-state"></span></td><td class="a-time mono"></td>'
      + '<td class="a-call mono"></td><td class="a-dur mono"></td><td class="a-actions">'
      + '<span class="a-monitor" role="group" data-i18n-aria-label="supervisor.monitor.label">'
      + '<button type="button" class="btn btn-secondary" data-mode="listen" data-i18n="supervisor.listen"></button>'
      + '<button type="button" class="btn btn-secondary" data-mode="whisper" data-i18n="supervisor.whisper"></button>'
      + '<button type="button" class="btn btn-secondary" data-mode="barge" data-i18n="supervisor.barge"></button></span>'
      + '<select class="a-set-state" data-i18n-aria-label="supervisor.set_state.label"></select>'
      + '<button type="button" class="btn btn-outline-danger a-logout" data-i18n="supervisor.agent_logout"></button></td>';
    translate(row);
    row.querySelector('.a-logout').addEventListener('click', () => logoutAgent(a.agent_id));
    for (const button of row.querySelectorAll('.a-monitor button')) {
      button.addEventListener('click', () => { if (row.dataset.callId) monitor.start(row.dataset.callId, button.dataset.mode); });
    }
    const select = row.querySelector('.a-set-state');
    select.addEventListener('change', () => { setAgentState(a.agent_id, select.value); select.value = ''; });
  }, (row, a) => {
    setOptions(row.querySelector('.a-set-state'), [['', t('supervisor.set_state.placeholder')], ['available', stateLabel('available')],
      ...S.breakReasons.map((r) => [`break:${r}`, `${stateLabel('break')} · ${r}`]), ['offline', stateLabel('offline')]]);
    row.dataset.callId = a.state === 'on_call' && a.call_id ? a.call_id : '';
    row.querySelector('.a-monitor').hidden = !row.dataset.callId;
    row.classList.toggle('monitored', !!row.dataset.callId && row.dataset.callId === monitor.callId);
    row.querySelector('.a-name').textContent = a.username;
    const chip = row.querySelector('.a-state');
    chip.dataset.state = a.state;
    chip.textContent = stateLabel(a.state) + (a.reason && a.state === 'break' ? ` · ${a.reason}` : '')
      + (a.pending ? ` → ${stateLabel(a.pending)}` : '');
    row.querySelector('.a-logout').disabled = a.state === 'offline';
    row.dataset.since = String(a.time_in_state);
    row.dataset.call = a.call_duration === null ? '' : String(a.call_duration);
    const callCell = row.querySelector('.a-call');
    callCell.textContent = a.call_id ? `${a.call_id.slice(0, 8)}…` : '–';
    callCell.title = a.call_id || '';
  });
  monitor.names(agents);
  renderWaiting();
  tick();
}

async function setAgentState(agentId, value) {
  if (!value) return;
  const [state, reason] = value.split(/:(.*)/s);
  try {
    await api('POST', `/api/agents/${encodeURIComponent(agentId)}/state`, reason ? { state, reason } : { state });
  } catch (err) { showError(err); }
}

function renderWaiting() {
  const waiting = S.snap.waiting || [];
  $('no-waiting').hidden = waiting.length > 0;
  $('waiting-rows').closest('table').hidden = waiting.length === 0;
  const queues = S.snap.queues.map((q) => q.queue);
  syncRows($('waiting-rows'), waiting, (w) => w.call_id, (row, w) => {
    row.dataset.call = w.call_id;
    row.innerHTML = '<td class="w-queue"></td><td class="w-pos mono"></td><td class="w-age mono"></td><td class="w-prio mono"></td>'
      + '<td class="w-ring"></td><td class="a-actions">'
      + '<button type="button" class="btn btn-secondary w-next" data-i18n="supervisor.waiting.serve_next"></button>'
      + '<select class="w-move" data-i18n-aria-label="supervisor.waiting.move_label"></select></td>';
    translate(row);
    row.querySelector('.w-next').addEventListener('click', () => serveNext(w.call_id));
    const move = row.querySelector('.w-move');
    move.addEventListener('change', () => { moveCall(w.call_id, move.value); move.value = ''; });
  }, (row, w) => {
    row.querySelector('.w-queue').textContent = w.queue + (w.callback ? ` · ${t('supervisor.waiting.callback')}` : '');
    row.querySelector('.w-pos').textContent = String(w.position);
    row.dataset.age = String(w.age);
    row.querySelector('.w-prio').textContent = String(w.priority);
    row.querySelector('.w-ring').textContent = w.ringing.length ? t('supervisor.waiting.ringing') : '–';
    row.querySelector('.w-next').disabled = w.position === 1;
    setOptions(row.querySelector('.w-move'), [['', t('supervisor.waiting.move')], ...queues.filter((q) => q !== w.queue).map((q) => [q, q])]);
  });
}

/** Ahead of everyone in its queue: one above the highest priority waiting there (at most 99). */
async function serveNext(callId) {
  const waiting = S.snap.waiting || [];
  const call = waiting.find((w) => w.call_id === callId);
  if (!call) return;
  const top = Math.max(...waiting.filter((w) => w.queue === call.queue).map((w) => w.priority));
  await callAction(callId, 'priority', { priority: Math.min(99, top + 1) });
}

async function moveCall(callId, queue) {
  if (queue) await callAction(callId, 'move', { queue });
}

async function callAction(callId, action, body) {
  try {
    await api('POST', `/api/supervisor/calls/${encodeURIComponent(callId)}/${action}`, body);
  } catch (err) { showError(err); }
}

function tick() {
  if (!S.snap) return;
  const extra = elapsed();
  for (const row of $('agent-rows').querySelectorAll('tr')) {
    row.querySelector('.a-time').textContent = duration(Number(row.dataset.since) + extra);
    row.querySelector('.a-dur').textContent = row.dataset.call ? duration(Number(row.dataset.call) + extra) : '–';
  }
  for (const row of $('waiting-rows').querySelectorAll('tr')) {
    row.querySelector('.w-age').textContent = duration(Number(row.dataset.age) + extra);
  }
  for (const q of S.snap.queues) {
    const el = document.querySelector(`.tile[data-queue="${CSS.escape(q.queue)}"] [data-metric="OLDEST_CONTACT_AGE"]`);
    if (el && q.metrics.OLDEST_CONTACT_AGE !== null) el.textContent = duration(q.metrics.OLDEST_CONTACT_AGE + extra);
  }
}

async function logoutAgent(agentId) {
  try {
    await api('POST', `/api/supervisor/agents/${encodeURIComponent(agentId)}/logout`);
  } catch (err) { showError(err); }
}

function updateNotifyButton() {
  $('btn-notify').hidden = !('Notification' in window) || Notification.permission !== 'default';
}

/** Stop the socket (signed out): nothing reconnects until the next sign-in. */
function disconnect() {
  S.gen++;
  clearTimeout(S.timer);
  if (S.ws) S.ws.close();
  S.ws = null;
  S.snap = null;
  if (S.campaigns) S.campaigns.stop();
  S.campaigns = null;
  if (S.csat) S.csat.stop();
  S.csat = null;
}

/** A language change: the texts built from snapshots, and the selects keyed on their values. */
function relabel() {
  if (S.connKey) $('conn-text').textContent = t(S.connKey);
  for (const select of document.querySelectorAll('.a-set-state, .w-move')) select.dataset.key = '';
  render();
  monitor.render();
  if (S.campaigns) S.campaigns.relabel();
  if (S.csat) S.csat.paint();
}

$('btn-notify').addEventListener('click', () => Notification.requestPermission().then(updateNotifyButton));
updateNotifyButton();
setInterval(tick, 1000);
onLanguageChange(relabel);
startPage({
  page: 'supervisor',
  roles: ['supervisor', 'admin'],
  catalogues: ['supervisor'],
  onReady: () => {
    connect();
    if (!S.campaigns) S.campaigns = startCampaignTiles(showError);
    if (!S.csat) S.csat = startCsat(showError);
  },
  onSignedOut: disconnect,
  onSignIn: () => {
    if ('Notification' in window && Notification.permission === 'default') Notification.requestPermission().then(updateNotifyButton);
  },
});
