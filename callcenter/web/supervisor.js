// Supervisor wallboard: login, one WebSocket (/api/supervisor/ws) pushing snapshots of the
// tenant's queues and agents (Amazon Connect metric names), tiles per queue that turn red when
// a threshold is crossed (with a browser notification), the agents' table. No polling.

const $ = (id) => document.getElementById(id);
const S = { ws: null, gen: 0, backoff: 500, timer: null, snap: null, receivedAt: 0, alerts: new Map(), editing: null };
window.wallboard = S;

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
  ws.onmessage = (event) => {
    if (gen !== S.gen) return;
    const message = JSON.parse(event.data);
    if (message.type !== 'snapshot') return;
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

function renderAgents() {
  const rows = $('agent-rows');
  const agents = S.snap.agents;
  $('no-agents').hidden = agents.length > 0;
  const seen = new Set();
  for (const a of agents) {
    seen.add(a.agent_id);
    let row = rows.querySelector(`tr[data-agent="${CSS.escape(a.agent_id)}"]`);
    if (!row) {
      row = document.createElement('tr');
      row.dataset.agent = a.agent_id;
      row.innerHTML = '<td class="a-name"></td><td><span class="chip a-state"></span></td><td class="a-time mono"></td>'
        + '<td class="a-call mono"></td><td class="a-dur mono"></td><td><button type="button" class="btn btn-outline-danger a-logout">Log out</button></td>';
      row.querySelector('.a-logout').addEventListener('click', () => logoutAgent(a.agent_id));
      rows.append(row);
    }
    row.querySelector('.a-name').textContent = a.username;
    const chip = row.querySelector('.a-state');
    chip.dataset.state = a.state;
    chip.textContent = (STATE_LABELS[a.state] || a.state) + (a.reason && a.state === 'break' ? ` · ${a.reason}` : '')
      + (a.pending ? ` → ${STATE_LABELS[a.pending] || a.pending}` : '');
    row.querySelector('.a-logout').disabled = a.state === 'offline';
    row.dataset.since = String(a.time_in_state);
    row.dataset.call = a.call_duration === null ? '' : String(a.call_duration);
    row.querySelector('.a-call').textContent = a.call_id || '–';
  }
  rows.querySelectorAll('tr').forEach((row) => { if (!seen.has(row.dataset.agent)) row.remove(); });
  tick();
}

function tick() {
  if (!S.snap) return;
  const extra = elapsed();
  for (const row of $('agent-rows').querySelectorAll('tr')) {
    row.querySelector('.a-time').textContent = duration(Number(row.dataset.since) + extra);
    row.querySelector('.a-dur').textContent = row.dataset.call ? duration(Number(row.dataset.call) + extra) : '–';
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
