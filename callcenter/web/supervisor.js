// Supervisor wallboard: login, one WebSocket (/api/supervisor/ws) pushing snapshots of the
// tenant's queues and agents (Amazon Connect metric names), tiles per queue that turn red when
// a threshold is crossed (with a browser notification), the agents' table with their state and
// listen / whisper / barge, the waiting calls with "serve next" and "move to". No polling.

import { Monitor } from './monitor.js';

const $ = (id) => document.getElementById(id);
const S = { ws: null, gen: 0, backoff: 500, timer: null, snap: null, receivedAt: 0, alerts: new Map(), editing: null,
  breakReasons: [] };
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

function setView(view) {
  document.body.dataset.view = view;
  $('loading-view').hidden = view !== 'loading';
  $('login-view').hidden = view !== 'login';
  $('app-view').hidden = view !== 'app';
}

function showLogin(message) {
  setView('login');
  const error = $('login-error');
  error.textContent = message || '';
  error.hidden = !message;
  const last = JSON.parse(localStorage.getItem('wallboard.lastLogin') || '{}');
  if (!$('login-tenant').value) $('login-tenant').value = last.tenant || '';
  if (!$('login-username').value) $('login-username').value = last.username || '';
  $('login-password').focus();
}

async function login(event) {
  event.preventDefault();
  const tenant = $('login-tenant').value.trim();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  if (!tenant || !username || !password) { showLogin('Enter your company, username and password.'); return; }
  $('login-submit').disabled = true;
  try {
    let reply;
    try {
      reply = await fetch('/api/login', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ tenant, username, password }),
      });
    } catch (_) { showLogin('Cannot reach the server. Check your connection and try again.'); return; }
    if (!reply.ok) {
      showLogin(reply.status === 401 ? 'Wrong company, username or password.' : `Sign-in failed (HTTP ${reply.status}).`);
      return;
    }
    localStorage.setItem('wallboard.lastLogin', JSON.stringify({ tenant, username }));
    $('login-password').value = '';
    if ('Notification' in window && Notification.permission === 'default') Notification.requestPermission().then(updateNotifyButton);
    setView('loading');
    connect();
  } finally {
    $('login-submit').disabled = false;
  }
}

async function logout() {
  S.gen++;
  clearTimeout(S.timer);
  if (S.ws) S.ws.close();
  try { await fetch('/api/logout', { method: 'POST', credentials: 'same-origin' }); } catch (_) { /* gone anyway */ }
  showLogin('');
}

// ----------------------------------------------------------------- socket

function setConn(ok, text) {
  $('conn').dataset.ok = String(ok);
  $('conn-text').textContent = text;
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
    S.snap = message;
    S.receivedAt = Date.now() / 1000;
    setView('app');
    setConn(true, 'Live');
    render();
  };
  ws.onclose = (event) => {
    if (gen !== S.gen) return;
    if (event.code === 4401) { showLogin(''); return; }
    if (event.code === 4403) { showLogin('The wallboard is for supervisors and admins.'); return; }
    setConn(false, 'Reconnecting…');
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
    const reply = await fetch(`/api/supervisor/thresholds/${encodeURIComponent(name)}`, {
      method: 'PUT', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    if (reply.ok) form.hidden = true; else alert(`Saving the thresholds failed (HTTP ${reply.status}).`);
  });
  $('tiles').append(tile);
  return tile;
}

function render() {
  const snap = S.snap;
  if (!snap) return;
  const names = new Set(snap.queues.map((q) => q.queue));
  document.querySelectorAll('.tile').forEach((tile) => { if (!names.has(tile.dataset.queue)) tile.remove(); });
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
    const t = q.thresholds, limits = [];
    if (t.OLDEST_CONTACT_AGE !== null) limits.push(`longest wait ≤ ${t.OLDEST_CONTACT_AGE} s`);
    if (t.SERVICE_LEVEL !== null) limits.push(`service level ≥ ${t.SERVICE_LEVEL}% (answered within ${q.sl_threshold} s)`);
    tile.querySelector('.tile-limits').textContent = limits.length ? `Thresholds: ${limits.join(', ')}` : 'No thresholds';
    notify(q);
  }
  renderAgents();
}

function notify(q) {
  const before = S.alerts.get(q.queue) || false;
  S.alerts.set(q.queue, q.alert);
  if (!q.alert || before) return;
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const what = q.breaches.map((b) => (b === 'OLDEST_CONTACT_AGE'
    ? `a caller has waited ${duration(q.metrics.OLDEST_CONTACT_AGE)}`
    : `service level ${Math.round(q.metrics.SERVICE_LEVEL)}%`)).join(', ');
  try { new Notification(`Queue ${q.queue}`, { body: what, tag: `queue-${q.queue}` }); } catch (_) { /* not allowed here */ }
}

const STATE_LABELS = { offline: 'Offline', available: 'Available', reserved: 'Ringing', on_call: 'On call', wrap_up: 'Wrap-up', break: 'Break' };

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
      + '<span class="a-monitor" role="group" aria-label="Monitor the call">'
      + '<button type="button" class="btn btn-secondary" data-mode="listen">Listen</button>'
      + '<button type="button" class="btn btn-secondary" data-mode="whisper">Whisper</button>'
      + '<button type="button" class="btn btn-secondary" data-mode="barge">Barge</button></span>'
      + '<select class="a-set-state" aria-label="Set state"></select>'
      + '<button type="button" class="btn btn-outline-danger a-logout">Log out</button></td>';
    row.querySelector('.a-logout').addEventListener('click', () => logoutAgent(a.agent_id));
    for (const button of row.querySelectorAll('.a-monitor button')) {
      button.addEventListener('click', () => { if (row.dataset.callId) monitor.start(row.dataset.callId, button.dataset.mode); });
    }
    const select = row.querySelector('.a-set-state');
    select.addEventListener('change', () => { setAgentState(a.agent_id, select.value); select.value = ''; });
  }, (row, a) => {
    setOptions(row.querySelector('.a-set-state'), [['', 'Set state…'], ['available', 'Available'],
      ...S.breakReasons.map((r) => [`break:${r}`, `Break · ${r}`]), ['offline', 'Offline']]);
    row.dataset.callId = a.state === 'on_call' && a.call_id ? a.call_id : '';
    row.querySelector('.a-monitor').hidden = !row.dataset.callId;
    row.classList.toggle('monitored', !!row.dataset.callId && row.dataset.callId === monitor.callId);
    row.querySelector('.a-name').textContent = a.username;
    const chip = row.querySelector('.a-state');
    chip.dataset.state = a.state;
    chip.textContent = (STATE_LABELS[a.state] || a.state) + (a.reason && a.state === 'break' ? ` · ${a.reason}` : '')
      + (a.pending ? ` → ${STATE_LABELS[a.pending] || a.pending}` : '');
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
  const reply = await fetch(`/api/agents/${encodeURIComponent(agentId)}/state`, {
    method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(reason ? { state, reason } : { state }),
  });
  if (!reply.ok) alert(`Setting the state failed: ${await problem(reply)}`);
}

async function problem(reply) {
  try { const body = await reply.json(); return body.detail || body.message || body.title || `HTTP ${reply.status}`; } catch (_) { return `HTTP ${reply.status}`; }
}

function renderWaiting() {
  const waiting = S.snap.waiting || [];
  $('no-waiting').hidden = waiting.length > 0;
  $('waiting-rows').closest('table').hidden = waiting.length === 0;
  const queues = S.snap.queues.map((q) => q.queue);
  syncRows($('waiting-rows'), waiting, (w) => w.call_id, (row, w) => {
    row.dataset.call = w.call_id;
    row.innerHTML = '<td class="w-queue"></td><td class="w-pos mono"></td><td class="w-age mono"></td><td class="w-prio mono"></td>'
      + '<td class="w-ring"></td><td class="a-actions"><button type="button" class="btn btn-secondary w-next">Serve next</button>'
      + '<select class="w-move" aria-label="Move to queue"></select></td>';
    row.querySelector('.w-next').addEventListener('click', () => serveNext(w.call_id));
    const move = row.querySelector('.w-move');
    move.addEventListener('change', () => { moveCall(w.call_id, move.value); move.value = ''; });
  }, (row, w) => {
    row.querySelector('.w-queue').textContent = w.queue + (w.callback ? ' · callback' : '');
    row.querySelector('.w-pos').textContent = String(w.position);
    row.dataset.age = String(w.age);
    row.querySelector('.w-prio').textContent = String(w.priority);
    row.querySelector('.w-ring').textContent = w.ringing.length ? 'ringing' : '–';
    row.querySelector('.w-next').disabled = w.position === 1;
    setOptions(row.querySelector('.w-move'), [['', 'Move to…'], ...queues.filter((q) => q !== w.queue).map((q) => [q, q])]);
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
  const reply = await fetch(`/api/supervisor/calls/${encodeURIComponent(callId)}/${action}`, {
    method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  if (!reply.ok) alert(`That did not work: ${await problem(reply)}`);
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
  const reply = await fetch(`/api/supervisor/agents/${encodeURIComponent(agentId)}/logout`, { method: 'POST', credentials: 'same-origin' });
  if (!reply.ok) alert(`Logging the agent out failed (HTTP ${reply.status}).`);
}

function updateNotifyButton() {
  $('btn-notify').hidden = !('Notification' in window) || Notification.permission !== 'default';
}

$('login-form').addEventListener('submit', login);
$('btn-logout').addEventListener('click', logout);
$('btn-notify').addEventListener('click', () => Notification.requestPermission().then(updateNotifyButton));
updateNotifyButton();
setInterval(tick, 1000);
connect();
