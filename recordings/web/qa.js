// Quality page: recorded calls and agents' chats (each with the customer's satisfaction rating),
// playback with waveform and transcript (a chat: its messages), evaluation forms (pre-filled by the
// automatic evaluation), calibration, disputes, reports and form editing.
// Talks to /api/qa/* and the recording API (/api/calls/{id}/recording[/audio|/peaks],
// /api/calls/{id}/transcript) with the session cookie. Sign-in, header, language, errors and toasts
// come from the page shell (/static/shell.js); every visible string from the qa catalogue.

import { ApiError, api, errorText, formatTime, onLanguageChange, startPage, t, toast, el } from '/static/shell.js';

// ----------------------------------------------------------------- helpers

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const PAGE_SIZE = 25;
const LOW_CONF = 0.5;
const SERIES_COLOURS = ['#1d4ed8', '#15803d', '#b45309', '#be185d', '#0e7490', '#7c3aed', '#dc2626', '#4d7c0f',
  '#0f766e', '#9333ea'];

function show(node, visible) { if (node) node.hidden = !visible; }
function setText(node, text) { if (node) node.textContent = text === null || text === undefined ? '' : String(text); }

/** 75 -> "01:15", 3725 -> "1:02:05". */
function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${String(m).padStart(2, '0')}:${ss}`;
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : formatTime(d, { date: true });
}

function scoreText(score) {
  return score === null || score === undefined ? '–' : `${Math.round(score * 10) / 10}`;
}

function scoreChip(score, extra = '') {
  const cls = score === null || score === undefined ? '' : score >= 85 ? 'chip-good' : score >= 60 ? 'chip-mid' : 'chip-bad';
  return el('span', { className: `chip ${cls} ${extra}`.trim() }, scoreText(score));
}

/** A satisfaction rating: "4/5", with the customer's comment in the title; "–" without one. */
function csatChip(csat) {
  if (!csat) return el('span', { className: 'muted' }, '–');
  const cls = csat.rating >= 4 ? 'chip-good' : csat.rating === 3 ? 'chip-mid' : 'chip-bad';
  return el('span', { className: `chip ${cls}`, title: csat.comment || '', dataset: { testid: 'csat' } },
    t('qa.csat.value', { rating: csat.rating }));
}

function pct(value) {
  return value === null || value === undefined ? '–' : `${Math.round(value * 100)}%`;
}

function valueText(value, question) {
  if (value === null || value === undefined || value === '') return '–';
  if (value === 'na') return t('qa.answer.na');
  if (question && question.type === 'yes_no') return value === 'yes' ? t('qa.answer.yes') : value === 'no' ? t('qa.answer.no') : String(value);
  return String(value);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function questionsOf(definition) {
  const out = [];
  for (const section of (definition && definition.sections) || []) {
    for (const q of section.questions || []) out.push({ ...q, section: section.id, sectionTitle: section.title });
  }
  return out;
}

function evidenceItems(evidence) {
  if (!evidence) return [];
  const list = Array.isArray(evidence) ? evidence : [evidence];
  return list.filter((e) => e !== null && e !== undefined).map((e) => {
    if (typeof e !== 'object') return { text: String(e), start: null };
    if (e.metric !== undefined) {
      const limits = [e.min !== undefined ? t('qa.evidence.min', { value: e.min }) : '',
        e.max !== undefined ? t('qa.evidence.max', { value: e.max }) : ''].filter(Boolean).join(', ');
      const value = typeof e.value === 'number' ? Math.round(e.value * 1000) / 1000 : e.value;
      return { text: `${e.metric.replace(/_/g, ' ')} ${value}${limits ? ` (${limits})` : ''}`, start: null };
    }
    const start = e.start ?? e.t ?? e.at ?? null;
    const text = e.text ?? e.phrase ?? e.word ?? e.label ?? '';
    return { text: String(text), start: start === null ? null : Number(start), end: e.end ?? null, speaker: e.speaker };
  });
}

// ----------------------------------------------------------------- state

const S = {
  me: null,
  role: '',
  options: { agents: [], queues: [] },
  filters: {},
  offset: 0,
  total: 0,
  call: null,        // GET /api/qa/calls/{id}
  recording: null,   // GET /api/calls/{id}/recording
  transcript: null,  // GET /api/calls/{id}/transcript
  peaks: null,
  words: [],         // [{word,start,end,conf,speaker,el}], sorted by start
  current: [],
  formId: null,
  forms: [],
  editingForm: null,
  raf: 0,
  transcriptTimer: null,
};

window.qa = {
  get state() { return S; },
  get audio() { return $('#audio'); },
};

// ----------------------------------------------------------------- views

function showSection(name) {
  for (const v of ['calls', 'call', 'mine', 'disputes', 'reports', 'forms']) show($(`#${v}-view`), v === name);
  const tab = name === 'call' ? 'calls' : name;
  for (const a of $$('.tab')) {
    if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.body.dataset.section = name;
}

async function route() {
  if (!S.me) return;
  const hash = location.hash.replace(/^#\/?/, '');
  const [name, arg] = hash.split('/');
  const isAgent = S.role === 'agent';
  if (name !== 'call') stopPlayback();
  try {
    if (isAgent) {
      showSection('mine');
      await loadMine();
    } else if (name === 'call' && arg) {
      showSection('call');
      await openCall(decodeURIComponent(arg));
    } else if (name === 'disputes') {
      showSection('disputes');
      await loadDisputes();
    } else if (name === 'reports') {
      showSection('reports');
      await loadReport();
    } else if (name === 'forms') {
      showSection('forms');
      await loadForms();
    } else {
      showSection('calls');
      await loadCalls();
    }
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(errorText(err));
  }
}

// ----------------------------------------------------------------- start

async function start(me) {
  S.me = me;
  S.role = me.role;
  document.body.dataset.role = me.role;
  if (S.role !== 'agent') {
    try {
      S.options = await api('GET', '/api/qa/options');
      fillFilterOptions();
    } catch (err) {
      toast(errorText(err));
    }
  }
  await route();
}

// ----------------------------------------------------------------- call list

function fillFilterOptions() {
  const agent = $('#f-agent');
  agent.replaceChildren(el('option', { value: '' }, t('qa.all_agents')),
    ...S.options.agents.map((a) => el('option', { value: a.id }, a.username)));
  const queue = $('#f-queue');
  queue.replaceChildren(el('option', { value: '' }, t('qa.all_queues')),
    ...S.options.queues.map((q) => el('option', { value: q }, q)));
}

function readFilters() {
  const day = (value, add) => {
    if (!value) return '';
    const d = new Date(`${value}T00:00:00`);
    d.setDate(d.getDate() + add);
    return d.toISOString();
  };
  return {
    agent: $('#f-agent').value,
    queue: $('#f-queue').value,
    since: day($('#f-since').value, 0),
    until: day($('#f-until').value, 1),  // the whole "to" day
    min_score: $('#f-min').value,
    max_score: $('#f-max').value,
    q: $('#f-q').value.trim(),
    channel: $('#f-channel').value,
  };
}

async function loadCalls() {
  const data = await api('GET', `/api/qa/calls${query({ ...S.filters, limit: PAGE_SIZE, offset: S.offset })}`);
  S.total = data.total;
  const body = $('#calls-table tbody');
  body.replaceChildren(...data.items.map(callRow));
  show($('#calls-empty'), data.items.length === 0);
  const first = data.items.length ? S.offset + 1 : 0;
  setText($('#page-info'), t('qa.page_info', { first, last: S.offset + data.items.length, total: data.total }));
  $('#page-prev').disabled = S.offset === 0;
  $('#page-next').disabled = S.offset + data.items.length >= data.total;
}

function statusChip(status, progress) {
  if (!status) return el('span', { className: 'muted' }, '–');
  const cls = { complete: 'chip-good', done: 'chip-good', recording: 'chip-info', running: 'chip-info',
    pending: '', incomplete: 'chip-mid', failed: 'chip-bad', purged: 'chip-bad' }[status] ?? '';
  const text = status === 'running' && progress ? `${statusName(status)} ${Math.round(progress * 100)}%` : statusName(status);
  return el('span', { className: `chip ${cls}` }, text);
}

const STATUSES = new Set(['complete', 'done', 'recording', 'running', 'pending', 'incomplete', 'failed', 'purged',
  'open', 'accepted', 'rejected', 'none']);

/** A recording's, transcript's or dispute's status in words (an unknown one as the server says it). */
function statusName(status) {
  return STATUSES.has(status) ? t(`qa.status.${status}`) : String(status);
}

function callRow(c) {
  const open = () => { location.hash = `#/call/${encodeURIComponent(c.call_id)}`; };
  return el('tr', { dataset: { callId: c.call_id }, tabindex: '0', onclick: open,
    onkeydown: (e) => { if (e.key === 'Enter') open(); } },
  el('td', {}, when(c.received_at)),
  el('td', { className: 'mono' }, c.caller),
  el('td', {}, c.agent ? c.agent.username : '–'),
  el('td', {}, c.queue || '–'),
  el('td', { className: 'num mono' }, c.facts.handle_seconds === null ? '–' : clock(c.facts.handle_seconds)),
  el('td', { className: 'num mono' }, clock(c.facts.hold_seconds)),
  c.recording
    ? el('td', {}, statusChip(c.recording.status), ' ', el('span', { className: 'muted mono' }, c.recording.duration ? clock(c.recording.duration) : ''))
    : el('td', {}, el('span', { className: 'chip chip-info' }, t(c.channel === 'chat' ? 'qa.channel.chat' : 'qa.status.none'))),
  el('td', {}, statusChip(c.transcript && c.transcript.status, c.transcript && c.transcript.progress)),
  el('td', { className: 'num', dataset: { testid: 'auto-score' } }, scoreChip(c.auto_score)),
  el('td', { className: 'num', dataset: { testid: 'manual-score' } }, c.manual_score === null ? el('span', { className: 'muted' }, t('qa.not_yet')) : scoreChip(c.manual_score)),
  el('td', { className: 'num' }, csatChip(c.csat)));
}

// ----------------------------------------------------------------- one call

function stopPlayback() {
  const audio = $('#audio');
  if (audio && !audio.paused) audio.pause();
  cancelAnimationFrame(S.raf);
  clearTimeout(S.transcriptTimer);
}

async function openCall(callId) {
  stopPlayback();
  const audio = $('#audio');
  S.call = null;
  S.recording = null;
  S.transcript = null;
  S.peaks = null;
  S.words = [];
  S.current = [];
  $('#transcript').replaceChildren();
  $('#eval-questions').replaceChildren();
  show($('#eval-result'), false);
  show($('#eval-error'), false);
  const call = await api('GET', `/api/qa/calls/${encodeURIComponent(callId)}`);
  S.call = call;
  S.forms = call.forms;
  renderCallHeader();
  renderEvaluations();
  selectSide('evaluate');
  const chat = call.call.channel === 'chat';
  show($('#player'), !chat);
  show($('#follow-label'), !chat);
  if (chat) {
    audio.removeAttribute('src');
    delete audio.dataset.callId;
    renderAnalytics(null);
    renderChat(call.chat);
    renderForm();
    return;
  }
  const rec = call.recording;
  const playable = Boolean(rec && (rec.status === 'complete' || rec.status === 'incomplete'));
  if (playable && audio.dataset.callId !== callId) {
    audio.dataset.callId = callId;
    audio.src = `/api/calls/${encodeURIComponent(callId)}/recording/audio`;
    audio.load();
  } else if (!playable) {
    audio.removeAttribute('src');
    delete audio.dataset.callId;
    audio.load();
  }
  const note = !rec ? t('qa.player.no_recording')
    : ['purged', 'recording', 'incomplete', 'failed'].includes(rec.status) ? t(`qa.player.${rec.status}`) : '';
  setText($('#player-note'), note);
  show($('#player-note'), Boolean(note));
  $('#play-btn').disabled = !playable;
  S.recording = rec;
  renderTime();
  await Promise.all([loadPeaks(callId), loadTranscript(callId)]);
  renderForm();
}

function renderCallHeader() {
  const c = S.call.call;
  setText($('#call-when'), `${when(c.received_at)} · ${c.direction}`);
  setText($('#call-caller'), c.caller);
  const facts = [
    [t('qa.agent'), c.agent ? c.agent.username : '–'],
    [t('qa.queue'), c.queue || '–'],
    [t('qa.talk'), c.facts.handle_seconds === null ? '–' : clock(c.facts.handle_seconds)],
    [t('qa.hold'), clock(c.facts.hold_seconds)],
    [t('qa.facts.disposition'), c.disposition || '–'],
    c.channel === 'chat' ? [t('qa.channel'), t('qa.channel.chat')] : [t('qa.recording'), S.call.recording
      ? `${statusName(S.call.recording.status)}${S.call.recording.legal_hold ? ` · ${t('qa.facts.legal_hold')}` : ''}` : statusName('none')],
    [t('qa.csat'), csatChip(S.call.csat)],
  ];
  const comment = S.call.csat && S.call.csat.comment;
  if (comment) facts.push([t('qa.csat.comment'), comment]);
  $('#call-facts').replaceChildren(...facts.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v))));
}

// ---- waveform

async function loadPeaks(callId) {
  const canvas = $('#waveform');
  const buckets = Math.max(100, Math.min(4000, Math.round(canvas.clientWidth || 800)));
  if (S.recording && (S.recording.status === 'complete' || S.recording.status === 'incomplete')) {
    try {
      S.peaks = await api('GET', `/api/calls/${encodeURIComponent(callId)}/recording/peaks?buckets=${buckets}`);
    } catch (err) {
      S.peaks = null;
      setText($('#player-note'), t('qa.player.no_waveform', { why: errorText(err) }));
      show($('#player-note'), true);
    }
  }
  drawWaveform();
}

function duration() {
  const audio = $('#audio');
  if (Number.isFinite(audio.duration) && audio.duration > 0) return audio.duration;
  if (S.peaks && S.peaks.duration) return S.peaks.duration;
  if (S.recording && S.recording.duration) return S.recording.duration;
  return 0;
}

function drawWaveform() {
  const canvas = $('#waveform');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 800;
  const height = canvas.clientHeight || 120;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const total = duration();
  const mid = height / 2;
  const styles = getComputedStyle(document.documentElement);
  // Paused intervals: nothing recorded there.
  const pauses = (S.recording && S.recording.pauses) || [];
  if (total > 0) {
    g.save();
    for (const p of pauses) {
      const x0 = (Number(p[0]) / total) * width;
      const x1 = ((p[1] === null || p[1] === undefined ? total : Number(p[1])) / total) * width;
      g.fillStyle = '#e2e8f0';
      g.fillRect(x0, 0, Math.max(1, x1 - x0), height);
      g.strokeStyle = '#cbd5e1';
      g.lineWidth = 1;
      for (let x = x0 - height; x < x1; x += 6) {
        g.beginPath();
        g.moveTo(Math.max(x0, x), x < x0 ? x0 - x : 0);
        g.lineTo(Math.min(x1, x + height), Math.min(height, x1 - x));
        g.stroke();
      }
    }
    g.restore();
  }
  if (S.peaks) {
    const lane = (values, colour, up) => {
      const n = values.length;
      if (!n) return;
      const step = width / n;
      g.fillStyle = colour;
      for (let i = 0; i < n; i++) {
        const h = Math.max(0.5, Math.min(1, Number(values[i]) || 0) * (mid - 4));
        g.fillRect(i * step, up ? mid - h : mid, Math.max(1, step - 0.3), h);
      }
    };
    lane(S.peaks.caller || [], styles.getPropertyValue('--caller').trim() || '#0e7490', true);
    lane(S.peaks.agent || [], styles.getPropertyValue('--agent').trim() || '#4338ca', false);
  }
  g.fillStyle = '#cbd5e1';
  g.fillRect(0, mid, width, 1);
  if (S.recording && S.recording.agent_answered_s && total > 0) {
    const x = (S.recording.agent_answered_s / total) * width;
    g.fillStyle = '#15803d';
    g.fillRect(x, 0, 1, height);
  }
  if (total > 0) {
    const x = ($('#audio').currentTime / total) * width;
    g.fillStyle = '#dc2626';
    g.fillRect(Math.min(width - 2, x), 0, 2, height);
  }
}

function seek(seconds, play = true) {
  const audio = $('#audio');
  if (!audio.src) return;
  const t = Math.max(0, Number(seconds) || 0);
  audio.currentTime = t;
  highlight(t);
  drawWaveform();
  renderTime();
  if (play && audio.paused) audio.play().catch(() => { /* not allowed yet */ });
}

function renderTime() {
  setText($('#time-label'), `${clock($('#audio').currentTime)} / ${clock(duration())}`);
  const playing = !$('#audio').paused;
  $('#play-icon').setAttribute('href', playing ? '#i-pause' : '#i-play');
  $('#play-btn').setAttribute('aria-label', t(playing ? 'qa.player.pause' : 'qa.play'));
}

function tick() {
  const audio = $('#audio');
  highlight(audio.currentTime);
  drawWaveform();
  renderTime();
  if (!audio.paused) S.raf = requestAnimationFrame(tick);
}

// ---- transcript

async function loadTranscript(callId) {
  clearTimeout(S.transcriptTimer);
  let data = null;
  try {
    data = await api('GET', `/api/calls/${encodeURIComponent(callId)}/transcript`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) toast(errorText(err));
  }
  if (!S.call || S.call.call.call_id !== callId) return;
  S.transcript = data;
  const status = data ? data.status : null;
  const chip = $('#transcript-status');
  chip.className = `chip ${status === 'done' ? 'chip-good' : status === 'failed' ? 'chip-bad' : 'chip-info'}`;
  setText(chip, !data ? t('qa.transcript.none') : status === 'running'
    ? t('qa.transcript.running', { percent: Math.round((data.progress || 0) * 100) }) : statusName(status));
  renderAnalytics(data && data.analytics);
  renderTranscript((data && data.words) || []);
  if (data && (status === 'pending' || status === 'running')) {
    S.transcriptTimer = setTimeout(() => loadTranscript(callId), 3000);
  }
}

function renderAnalytics(a) {
  const box = $('#analytics');
  if (!a || !Object.keys(a).length) { box.replaceChildren(); return; }
  const items = [];
  const add = (label, value) => { if (value !== undefined && value !== null) items.push(el('div', {}, el('dt', {}, label), el('dd', {}, value))); };
  const ratio = (v) => (v === undefined ? undefined : pct(v));
  const secs = (v) => (v === undefined || v === null ? undefined : clock(v));
  add(t('qa.analytics.agent_share'), ratio(a.agent_talk_ratio));
  add(t('qa.analytics.silence'), a.silence_ratio === undefined ? undefined : `${pct(a.silence_ratio)}${a.silence_s ? ` (${clock(a.silence_s)})` : ''}`);
  add(t('qa.analytics.overtalk'), a.overtalk_ratio === undefined ? undefined : `${pct(a.overtalk_ratio)}${a.overtalk_s ? ` (${clock(a.overtalk_s)})` : ''}`);
  add(t('qa.analytics.caller_talk'), secs(a.caller_talk_s));
  add(t('qa.analytics.agent_talk'), secs(a.agent_talk_s));
  box.replaceChildren(...items);
}

function renderTranscript(words) {
  const box = $('#transcript');
  S.words = words.map((w, i) => ({ ...w, i, start: Number(w.start), end: Number(w.end) }))
    .sort((a, b) => a.start - b.start || a.i - b.i);
  S.current = [];
  if (!S.words.length) {
    box.replaceChildren(el('p', { className: 'empty' }, t(S.transcript && S.transcript.status === 'done' ? 'qa.transcript.nothing' : 'qa.transcript.not_yet')));
    return;
  }
  const turns = [];
  let turn = null;
  for (const w of S.words) {
    if (!turn || turn.speaker !== w.speaker || w.start - turn.end > 4) {
      turn = { speaker: w.speaker, start: w.start, end: w.end, words: [] };
      turns.push(turn);
    }
    turn.words.push(w);
    turn.end = Math.max(turn.end, w.end);
  }
  box.replaceChildren(...turns.map((turn) => {
    const spans = [];
    for (const w of turn.words) {
      w.el = el('span', {
        className: `w${w.conf !== undefined && w.conf < LOW_CONF ? ' low' : ''}`,
        dataset: { start: w.start, end: w.end, i: w.i, testid: 'word' },
        title: `${clock(w.start)} · ${w.conf !== undefined ? t('qa.transcript.confidence', { percent: Math.round(w.conf * 100) }) : ''}`,
      }, w.word);
      spans.push(w.el, ' ');
    }
    return el('div', { className: 'turn', dataset: { speaker: turn.speaker, start: turn.start } },
      el('div', { className: 'turn-head' }, el('span', {}, t(turn.speaker === 'agent' ? 'qa.agent' : 'qa.caller')),
        el('span', { className: 'turn-time' }, clock(turn.start))),
      el('div', { className: 'turn-words' }, ...spans));
  }));
}

// ---- a chat's transcript (instead of the player and the spoken transcript)

const SENDERS = { agent: 'qa.agent', visitor: 'qa.chat.visitor', bot: 'qa.chat.bot', system: 'qa.chat.system' };

function renderChat(chat) {
  const chip = $('#transcript-status');
  chip.className = 'chip chip-info';
  setText(chip, t('qa.channel.chat'));
  const messages = (chat && chat.messages) || [];
  if (!messages.length) {
    $('#transcript').replaceChildren(el('p', { className: 'empty' }, t('qa.chat.empty')));
    return;
  }
  const start = new Date(chat.conversation.created_at).getTime();
  $('#transcript').replaceChildren(...messages.map((m) => {
    const who = t(SENDERS[m.sender] || 'qa.chat.system') + (m.agent ? ` · ${m.agent}` : '');
    const body = [m.text];
    if (m.attachment) {
      body.push(' ', el('a', { href: m.attachment.url, target: '_blank', rel: 'noopener' },
        t('qa.chat.attachment', { name: m.attachment.filename })));
    }
    return el('div', { className: 'turn', dataset: { speaker: m.sender === 'visitor' ? 'caller' : m.sender, testid: 'chat-message' } },
      el('div', { className: 'turn-head' }, el('span', {}, who),
        el('span', { className: 'turn-time', title: when(m.created_at) }, clock((new Date(m.created_at).getTime() - start) / 1000))),
      el('div', { className: 'turn-words chat-text' }, ...body));
  }), ...(chat.more ? [el('p', { className: 'muted small' }, t('qa.chat.more'))] : []));
}

/** Mark the words being said at ``t`` (one per speaker at most; both may talk at once). */
function highlight(t) {
  const words = S.words;
  if (!words.length) return;
  let lo = 0;
  let hi = words.length - 1;
  let last = -1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1;
    if (words[m].start <= t) { last = m; lo = m + 1; } else hi = m - 1;
  }
  const now = [];
  for (let i = last; i >= 0 && i > last - 40; i--) {
    const w = words[i];
    if (w.start <= t && t < w.end + 0.05 && !now.some((o) => o.speaker === w.speaker)) now.push(w);
  }
  const same = now.length === S.current.length && now.every((w) => S.current.includes(w));
  if (same) return;
  for (const w of S.current) w.el && w.el.classList.remove('current');
  for (const w of now) w.el && w.el.classList.add('current');
  S.current = now;
  if (now.length && $('#follow').checked && !$('#audio').paused) {
    const box = $('#transcript');
    const target = now[0].el;
    const top = target.offsetTop - box.offsetTop;
    if (top < box.scrollTop + 20 || top > box.scrollTop + box.clientHeight - 40) {
      box.scrollTop = Math.max(0, top - box.clientHeight / 3);
    }
  }
}

// ---- evaluation form

function activeForms() {
  return (S.call ? S.call.forms : []).filter((f) => f.active);
}

function autoEvaluation(formId) {
  return (S.call.evaluations || []).find((e) => e.kind === 'auto' && e.form_id === formId) || null;
}

function renderForm() {
  const select = $('#eval-form-select');
  const forms = activeForms();
  if (!forms.length) {
    select.replaceChildren();
    $('#eval-questions').replaceChildren(el('p', { className: 'empty' }, t('qa.eval.no_form')));
    $('#eval-submit').disabled = true;
    return;
  }
  if (!forms.some((f) => f.id === S.formId)) S.formId = forms[0].id;
  select.replaceChildren(...forms.map((f) => el('option', { value: f.id, selected: f.id === S.formId }, `${f.name} (v${f.version})`)));
  $('#eval-submit').disabled = false;
  const form = forms.find((f) => f.id === S.formId);
  const auto = autoEvaluation(form.id);
  setText($('#eval-auto-score'), auto ? t('qa.eval.auto_score', { score: scoreText(auto.score) }) : t('qa.eval.no_auto'));
  const box = $('#eval-questions');
  const parts = [];
  for (const section of form.definition.sections || []) {
    parts.push(el('div', { className: 'section-title' }, section.title || section.id,
      form.definition.scoring === 'section' && section.weight !== undefined ? ` · ${t('qa.eval.weight', { weight: section.weight })}` : ''));
    for (const q of section.questions || []) parts.push(questionBlock(q, auto ? auto.answers[q.id] : null));
  }
  box.replaceChildren(...parts);
  $('#eval-comment').value = '';
  updateLiveScore();
}

function questionBlock(q, autoAnswer) {
  const autoValue = autoAnswer ? autoAnswer.auto_value ?? autoAnswer.value : null;
  const block = el('div', { className: 'q', dataset: { qid: q.id, type: q.type, testid: `question-${q.id}` } });
  const name = `q-${q.id}`;
  const meta = [];
  if (q.weight !== undefined) meta.push(t('qa.eval.weight', { weight: q.weight }));
  if (q.auto_fail) meta.push(t('qa.eval.auto_fail'));
  block.append(el('div', { className: 'q-text' }, q.text, meta.length ? el('span', { className: 'q-meta' }, `(${meta.join(', ')})`) : null));
  const controls = el('div', { className: 'q-controls' });
  if (q.type === 'scale') {
    const min = Number(q.min ?? 1);
    const max = Number(q.max ?? 5);
    const select = el('select', { name, dataset: { testid: `answer-${q.id}` }, 'aria-label': q.text },
      el('option', { value: '' }, '–'));
    for (let v = min; v <= max; v++) select.append(el('option', { value: String(v) }, String(v)));
    if (q.allow_na) select.append(el('option', { value: 'na' }, 'N/A'));
    if (autoValue !== null && autoValue !== undefined) select.value = String(autoValue);
    select.addEventListener('change', () => onAnswerChange(block));
    controls.append(select);
  } else {
    const seg = el('div', { className: 'seg', role: 'radiogroup', 'aria-label': q.text });
    const choices = [['yes', t('qa.answer.yes')], ['no', t('qa.answer.no')]];
    if (q.allow_na) choices.push(['na', t('qa.answer.na')]);
    for (const [value, label] of choices) {
      const input = el('input', { type: 'radio', name, value, dataset: { testid: `answer-${q.id}-${value}` } });
      if (autoValue === value) input.checked = true;
      input.addEventListener('change', () => onAnswerChange(block));
      seg.append(el('label', {}, input, el('span', {}, label)));
    }
    controls.append(seg);
  }
  if (autoAnswer && autoAnswer.auto_value !== null && autoAnswer.auto_value !== undefined) {
    controls.append(el('span', { className: 'auto', title: t('qa.eval.auto_title') },
      t('qa.eval.auto'), el('b', { dataset: { testid: `auto-${q.id}` } }, valueText(autoAnswer.auto_value, q))));
  } else if (q.auto) {
    controls.append(el('span', { className: 'auto' }, t('qa.eval.auto'), ' ', el('b', {}, t('qa.eval.no_answer'))));
  }
  block.append(controls);
  if (autoAnswer && autoAnswer.reason) block.append(el('p', { className: 'reason' }, autoAnswer.reason));
  const evidence = evidenceItems(autoAnswer && autoAnswer.evidence);
  if (evidence.length) {
    block.append(el('div', { className: 'evidence-list' }, ...evidence.map((e) => {
      const attrs = { className: 'evidence', dataset: { testid: `evidence-${q.id}` } };
      if (e.start !== null) {
        attrs.type = 'button';
        attrs.dataset.t = e.start;
        attrs.title = t('qa.eval.play_from_here');
        attrs.onclick = () => seek(e.start);
      } else {
        attrs.className = 'evidence evidence-fact';
      }
      return el(e.start !== null ? 'button' : 'span', attrs, e.start !== null ? el('span', { className: 'mono' }, clock(e.start)) : null, e.text || 'evidence');
    })));
    for (const e of evidence) {
      if (e.start === null) continue;
      const w = S.words.find((x) => Math.abs(x.start - e.start) < 0.02);
      if (w && w.el) w.el.classList.add('evidence-hit');
    }
  }
  const comment = el('textarea', { className: 'comment', rows: '2', placeholder: t('qa.eval.comment'), dataset: { testid: `comment-${q.id}` },
    'aria-label': t('qa.eval.comment_on', { question: q.text }) });
  comment.addEventListener('input', () => block.classList.remove('invalid'));
  block.append(comment);
  block.dataset.auto = autoValue === null || autoValue === undefined ? '' : String(autoValue);
  onAnswerChange(block, true);
  return block;
}

function answerOf(block) {
  if (block.dataset.type === 'scale') {
    const v = $('select', block).value;
    return v === '' ? null : v === 'na' ? 'na' : Number(v);
  }
  const checked = $('input[type=radio]:checked', block);
  return checked ? checked.value : null;
}

function onAnswerChange(block, initial = false) {
  const value = answerOf(block);
  const auto = block.dataset.auto;
  const overridden = auto !== '' && value !== null && String(value) !== auto;
  block.dataset.overridden = String(overridden);
  const comment = $('textarea.comment', block);
  comment.placeholder = t(overridden ? 'qa.eval.why_override' : 'qa.eval.comment_optional');
  comment.required = overridden;
  if (!initial) {
    block.classList.remove('invalid');
    updateLiveScore();
  }
}

/** Rough live total (question scoring); the server's score is the one stored. */
function updateLiveScore() {
  const form = activeForms().find((f) => f.id === S.formId);
  if (!form) return;
  let got = 0;
  let weights = 0;
  let failed = false;
  const sectionScores = [];
  for (const section of form.definition.sections || []) {
    let sGot = 0;
    let sW = 0;
    for (const q of section.questions || []) {
      const block = $(`.q[data-qid="${CSS.escape(q.id)}"]`);
      if (!block) continue;
      const v = answerOf(block);
      if (v === null || v === 'na') continue;
      const w = Number(q.weight ?? 1);
      let s;
      if (q.type === 'scale') {
        const min = Number(q.min ?? 1);
        const max = Number(q.max ?? 5);
        s = max > min ? (v - min) / (max - min) : 1;
        if (q.auto_fail && v === min) failed = true;
      } else {
        s = v === 'yes' ? 1 : 0;
        if (q.auto_fail && v === 'no') failed = true;
      }
      sGot += s * w;
      sW += w;
    }
    if (sW > 0) sectionScores.push([sGot / sW, Number(section.weight ?? 1)]);
    got += sGot;
    weights += sW;
  }
  let total = null;
  if (form.definition.scoring === 'section') {
    const w = sectionScores.reduce((a, [, x]) => a + x, 0);
    total = w > 0 ? (sectionScores.reduce((a, [s, x]) => a + s * x, 0) / w) * 100 : null;
  } else {
    total = weights > 0 ? (got / weights) * 100 : null;
  }
  if (failed) total = 0;
  setText($('#eval-live-score'), total === null ? '' : t(failed ? 'qa.eval.live_failed' : 'qa.eval.live', { score: scoreText(total) }));
}

async function submitEvaluation(event) {
  event.preventDefault();
  show($('#eval-error'), false);
  show($('#eval-result'), false);
  const answers = {};
  const problems = [];
  for (const block of $$('#eval-questions .q')) {
    const value = answerOf(block);
    const comment = $('textarea.comment', block).value.trim();
    const qText = $('.q-text', block).firstChild.textContent;
    if (value === null) { problems.push(t('qa.eval.answer_missing', { question: qText })); block.classList.add('invalid'); continue; }
    if (block.dataset.overridden === 'true' && !comment) {
      problems.push(t('qa.eval.override_reason', { question: qText }));
      block.classList.add('invalid');
    }
    answers[block.dataset.qid] = { value, comment };
  }
  if (problems.length) {
    setText($('#eval-error'), problems.join('\n'));
    show($('#eval-error'), true);
    $('.q.invalid')?.scrollIntoView({ block: 'center' });
    return;
  }
  $('#eval-submit').disabled = true;
  try {
    const saved = await api('POST', `/api/qa/calls/${encodeURIComponent(S.call.call.call_id)}/evaluations`,
      { form_id: S.formId, answers, comment: $('#eval-comment').value.trim() });
    S.call.evaluations.unshift(saved);
    renderEvaluations();
    const result = $('#eval-result');
    result.dataset.evaluationId = saved.id;
    setText(result, t(saved.auto_failed ? 'qa.eval.saved_failed' : 'qa.eval.saved', { score: scoreText(saved.score) }));
    show(result, true);
  } catch (err) {
    setText($('#eval-error'), errorText(err));
    show($('#eval-error'), true);
  } finally {
    $('#eval-submit').disabled = false;
  }
}

// ---- evaluations list, calibration

function formById(id) {
  return (S.call ? S.call.forms : S.forms).find((f) => f.id === id) || null;
}

function kindName(kind) {
  return kind === 'auto' || kind === 'manual' ? t(`qa.kind.${kind}`) : String(kind);
}

function evaluationCard(e, { forms, agentView = false } = {}) {
  const form = (forms || []).find((f) => f.id === e.form_id) || formById(e.form_id);
  const questions = form ? questionsOf(form.definition) : [];
  const who = e.kind === 'auto' ? t('qa.evaluation.automatic') : (e.evaluator ? e.evaluator.username : t('qa.evaluation.someone'));
  const card = el('article', { className: 'evaluation', dataset: { evaluationId: e.id, kind: e.kind, testid: 'evaluation' } },
    el('div', { className: 'evaluation-head' },
      el('span', { className: 'who' }, who),
      el('span', { className: 'chip' }, kindName(e.kind)),
      el('span', { className: 'when' }, `${when(e.created_at)} · ${e.form ? `${e.form.name} v${e.form.version}` : ''}`),
      e.auto_failed ? el('span', { className: 'chip chip-bad' }, t('qa.eval.auto_fail')) : null,
      scoreChip(e.score)));
  if (agentView && e.call) {
    card.append(el('div', { className: 'muted small' },
      `${t('qa.evaluation.call_from', { caller: e.call.caller })} · ${when(e.call.received_at)}${e.call.queue ? ` · ${e.call.queue}` : ''}`));
  }
  const rows = questions.map((q) => {
    const a = (e.answers || {})[q.id] || {};
    const note = [];
    if (a.overridden) note.push(t('qa.evaluation.changed_from', { value: valueText(a.auto_value, q) }));
    if (a.comment) note.push(a.comment);
    return el('tr', { dataset: { qid: q.id } }, el('td', {}, q.text, note.length ? el('span', { className: 'note' }, note.join(' — ')) : null),
      el('td', {}, valueText(a.value, q)));
  });
  if (rows.length) card.append(el('table', { className: 'answers' }, el('tbody', {}, ...rows)));
  if (e.comment) card.append(el('p', { className: 'reason' }, e.comment));
  for (const d of e.disputes || []) card.append(disputeBox(d));
  if (agentView && !(e.disputes || []).some((d) => d.status === 'open')) {
    const button = el('button', { type: 'button', className: 'btn btn-secondary btn-sm', dataset: { testid: 'dispute-open' } }, t('qa.dispute.open'));
    button.addEventListener('click', () => {
      button.hidden = true;
      const text = el('textarea', { className: 'comment', rows: '3', placeholder: t('qa.dispute.comment'), dataset: { testid: 'dispute-comment' } });
      const send = el('button', { type: 'button', className: 'btn btn-primary btn-sm', dataset: { testid: 'dispute-send' } }, t('qa.dispute.send'));
      const cancel = el('button', { type: 'button', className: 'btn btn-secondary btn-sm' }, t('qa.cancel'));
      const box = el('div', { className: 'dispute-form' }, text, el('div', { className: 'row-actions' }, send, cancel));
      cancel.addEventListener('click', () => { box.remove(); button.hidden = false; });
      send.addEventListener('click', async () => {
        if (!text.value.trim()) { text.focus(); return; }
        send.disabled = true;
        try {
          await api('POST', `/api/qa/evaluations/${e.id}/disputes`, { comment: text.value.trim() });
          toast(t('qa.dispute.sent'), 'info');
          await loadMine();
        } catch (err) {
          toast(errorText(err));
          send.disabled = false;
        }
      });
      card.append(box);
      text.focus();
    });
    card.append(el('div', { className: 'row-actions' }, button));
  }
  return card;
}

function disputeBox(d) {
  return el('div', { className: 'dispute', dataset: { disputeId: d.id, status: d.status } },
    el('b', {}, t('qa.dispute.title', { status: statusName(d.status) })), ` ${when(d.created_at)}: ${d.comment}`,
    d.resolution ? el('div', {}, el('b', {}, t('qa.dispute.decision')), ' ', d.resolution) : null);
}

function renderEvaluations() {
  const list = (S.call && S.call.evaluations) || [];
  setText($('#evaluations-count'), list.length || '');
  const box = $('#evaluations-list');
  box.replaceChildren(...(list.length ? list.map((e) => evaluationCard(e)) : [el('p', { className: 'empty' }, t('qa.evaluation.none'))]));
}

function selectSide(name) {
  for (const b of $$('.side-tab')) b.setAttribute('aria-selected', String(b.dataset.side === name));
  for (const p of $$('[data-side-panel]')) show(p, p.dataset.sidePanel === name);
  if (name === 'calibration') loadCalibration().catch((err) => toast(errorText(err)));
}

async function loadCalibration() {
  const box = $('#calibration');
  const data = await api('GET', `/api/qa/calls/${encodeURIComponent(S.call.call.call_id)}/calibration`);
  if (!data.forms.length) {
    box.replaceChildren(el('p', { className: 'empty' }, t('qa.calibration.none')));
    return;
  }
  const parts = [];
  for (const f of data.forms) {
    const totals = f.totals;
    parts.push(el('div', { className: 'card-head' }, el('h2', {}, `${f.form.name} v${f.form.version}`),
      el('span', { className: 'chip' }, t(totals.count === 1 ? 'qa.calibration.evaluator' : 'qa.calibration.evaluators', { count: totals.count }))));
    parts.push(el('dl', { className: 'calib-summary' },
      ...[['min', totals.min], ['max', totals.max], ['spread', totals.spread], ['mean', totals.mean], ['stdev', totals.stdev]]
        .map(([k, v]) => el('div', {}, el('dt', {}, t(`qa.calibration.${k}`)), el('dd', { dataset: { testid: `calib-${k}` } }, scoreText(v))))));
    const questions = new Map(questionsOf((formById(f.form.id) || { definition: {} }).definition).map((q) => [q.id, q]));
    const head = el('tr', {}, el('th', {}, t('qa.question')), ...f.evaluations.map((e) => el('th', {}, e.evaluator ? e.evaluator.username : '?')),
      el('th', { className: 'num' }, t('qa.calibration.agree')));
    const rows = f.questions.map((q) => el('tr', { dataset: { qid: q.id } },
      el('td', {}, q.text),
      ...f.evaluations.map((e) => {
        const v = q.values.find((x) => x.evaluation_id === e.id);
        return el('td', {}, valueText(v ? v.value : null, questions.get(q.id)));
      }),
      el('td', { className: `num ${q.agreement !== null && q.agreement < 1 ? 'agree-low' : ''}` }, pct(q.agreement))));
    const scoreRow = el('tr', {}, el('td', {}, el('b', {}, t('qa.score'))), ...f.evaluations.map((e) => el('td', {}, el('b', {}, scoreText(e.score)))), el('td'));
    parts.push(el('table', { className: 'table calib-table' }, el('thead', {}, head), el('tbody', {}, ...rows, scoreRow)));
  }
  box.replaceChildren(...parts);
}

// ----------------------------------------------------------------- agent: my evaluations

async function loadMine() {
  const data = await api('GET', '/api/qa/my-evaluations');
  const forms = data.forms || [];
  const box = $('#mine-list');
  box.replaceChildren(...data.evaluations.map((e) => evaluationCard(e, { forms, agentView: true })));
  show($('#mine-empty'), data.evaluations.length === 0);
}

// ----------------------------------------------------------------- disputes (QA)

async function loadDisputes() {
  const status = $('#disputes-status').value;
  const list = await api('GET', `/api/qa/disputes${query({ status })}`);
  const body = $('#disputes-table tbody');
  body.replaceChildren(...list.map(disputeRow));
  show($('#disputes-empty'), list.length === 0);
}

function disputeRow(d) {
  const decision = el('td', {});
  if (d.status === 'open') {
    const text = el('textarea', { className: 'comment', rows: '2', placeholder: t('qa.dispute.resolution'), dataset: { testid: 'dispute-resolution' } });
    const resolve = async (status) => {
      if (!text.value.trim()) { text.focus(); toast(t('qa.dispute.resolution_first'), 'info'); return; }
      try {
        await api('PUT', `/api/qa/disputes/${d.id}`, { status, resolution: text.value.trim() });
        await loadDisputes();
      } catch (err) { toast(errorText(err)); }
    };
    decision.append(text, el('div', { className: 'row-actions' },
      el('button', { type: 'button', className: 'btn btn-success btn-sm', dataset: { testid: 'dispute-accept' }, onclick: () => resolve('accepted') }, t('qa.dispute.accept')),
      el('button', { type: 'button', className: 'btn btn-outline-danger btn-sm', dataset: { testid: 'dispute-reject' }, onclick: () => resolve('rejected') }, t('qa.dispute.reject'))));
  } else {
    decision.append(d.resolution || '', d.resolved_by ? el('div', { className: 'muted small' }, `${d.resolved_by.username}, ${when(d.resolved_at)}`) : '');
  }
  const callLink = el('a', { href: `#/call/${encodeURIComponent(d.call_id)}` }, d.call ? d.call.caller : d.call_id.slice(0, 8));
  return el('tr', { dataset: { disputeId: d.id } },
    el('td', {}, when(d.created_at)),
    el('td', {}, d.agent ? d.agent.username : '–'),
    el('td', {}, callLink, el('div', { className: 'muted small' }, d.evaluation ? `${kindName(d.evaluation.kind)} · ${d.evaluation.form.name}` : '')),
    el('td', { className: 'num' }, scoreChip(d.evaluation ? d.evaluation.score : null)),
    el('td', {}, d.comment),
    el('td', {}, el('span', { className: `chip ${{ open: 'chip-info', accepted: 'chip-good', rejected: 'chip-bad' }[d.status] || ''}`,
      dataset: { testid: 'dispute-status' } }, statusName(d.status))),
    decision);
}

// ----------------------------------------------------------------- reports

function defaultReportDates() {
  if ($('#r-since').value || $('#r-until').value) return;
  const today = new Date();
  const from = new Date(today);
  from.setDate(from.getDate() - 29);
  const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  $('#r-since').value = iso(from);
  $('#r-until').value = iso(today);
}

async function loadReport() {
  defaultReportDates();
  const day = (v, add) => {
    if (!v) return '';
    const d = new Date(`${v}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + add);
    return d.toISOString().slice(0, 10);
  };
  const data = await api('GET', `/api/qa/reports${query({ by: $('#r-by').value, interval: $('#r-interval').value,
    since: day($('#r-since').value, 0), until: day($('#r-until').value, 1) })}`);
  S.report = data;
  setText($('#r-sources'), t('qa.report.sources', { manual: data.sources.manual, auto: data.sources.auto }));
  renderReportTable(data);
  drawChart(data);
}

function renderReportTable(data) {
  const label = ['agent', 'queue', 'question'].includes(data.by) ? t(`qa.${data.by}`) : data.by;
  const head = el('tr', {}, el('th', {}, label), el('th', { className: 'num' }, t('qa.report.average')),
    el('th', { className: 'num' }, t('qa.report.evaluations')), el('th', { className: 'num' }, t('qa.report.by_people')),
    el('th', { className: 'num' }, t('qa.evaluation.automatic')),
    ...data.periods.map((p) => el('th', { className: 'num' }, p)));
  $('#report-table thead').replaceChildren(head);
  $('#report-table tbody').replaceChildren(...data.series.map((s) => {
    const byPeriod = new Map(s.points.map((p) => [p.period, p]));
    return el('tr', { dataset: { key: s.key } }, el('td', {}, s.label), el('td', { className: 'num' }, el('b', {}, scoreText(s.average))),
      el('td', { className: 'num' }, s.count), el('td', { className: 'num' }, s.manual), el('td', { className: 'num' }, s.auto),
      ...data.periods.map((p) => el('td', { className: 'num' }, byPeriod.has(p) ? scoreText(byPeriod.get(p).average) : '')));
  }));
  show($('#report-empty'), data.series.length === 0);
}

function drawChart(data) {
  const canvas = $('#report-chart');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 800;
  const height = canvas.clientHeight || 280;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 40;
  const right = 12;
  const top = 10;
  const bottom = 28;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  g.font = '12px system-ui, sans-serif';
  g.fillStyle = '#7a8696';
  g.strokeStyle = '#e2e7ee';
  g.lineWidth = 1;
  for (let v = 0; v <= 100; v += 25) {
    const y = top + plotH - (v / 100) * plotH;
    g.beginPath(); g.moveTo(left, y); g.lineTo(width - right, y); g.stroke();
    g.textAlign = 'right'; g.textBaseline = 'middle';
    g.fillText(String(v), left - 6, y);
  }
  const periods = data.periods;
  const xOf = (i) => left + (periods.length <= 1 ? plotW / 2 : (i / (periods.length - 1)) * plotW);
  g.textAlign = 'center'; g.textBaseline = 'top';
  const every = Math.max(1, Math.ceil(periods.length / Math.max(1, Math.floor(plotW / 80))));
  periods.forEach((p, i) => { if (i % every === 0) g.fillText(p, xOf(i), top + plotH + 8); });
  const legend = [];
  data.series.forEach((s, n) => {
    const colour = SERIES_COLOURS[n % SERIES_COLOURS.length];
    const byPeriod = new Map(s.points.map((p) => [p.period, p.average]));
    g.strokeStyle = colour;
    g.fillStyle = colour;
    g.lineWidth = 2;
    g.beginPath();
    let drawing = false;
    periods.forEach((p, i) => {
      const v = byPeriod.get(p);
      if (v === undefined || v === null) { drawing = false; return; }
      const x = xOf(i);
      const y = top + plotH - (v / 100) * plotH;
      if (drawing) g.lineTo(x, y); else g.moveTo(x, y);
      drawing = true;
    });
    g.stroke();
    periods.forEach((p, i) => {
      const v = byPeriod.get(p);
      if (v === undefined || v === null) return;
      g.beginPath();
      g.arc(xOf(i), top + plotH - (v / 100) * plotH, 3, 0, Math.PI * 2);
      g.fill();
    });
    legend.push(el('span', {}, el('i', { style: `background:${colour}` }), s.label));
  });
  $('#report-legend').replaceChildren(...legend);
}

// ----------------------------------------------------------------- forms

async function loadForms(selectId) {
  const forms = await api('GET', '/api/qa/forms?include_inactive=true');
  S.forms = forms;
  const list = $('#forms-list');
  list.replaceChildren(...forms.map((f) => el('li', { className: f.active ? '' : 'inactive' },
    el('button', { type: 'button', dataset: { formId: f.id }, 'aria-current': String(S.editingForm && S.editingForm.id === f.id),
      onclick: () => editForm(f) }, el('span', {}, f.name), el('span', { className: 'muted' }, `v${f.version}${f.active ? '' : ` · ${t('qa.forms.old')}`}`)))));
  const pick = forms.find((f) => f.id === selectId) || (S.editingForm && forms.find((f) => f.id === S.editingForm.id)) || forms.find((f) => f.active);
  if (pick) editForm(pick); else newForm();
}

function editForm(f) {
  S.editingForm = f;
  setText($('#form-editor-title'), f.name);
  setText($('#form-editor-version'), t(f.active ? 'qa.forms.version' : 'qa.forms.version_inactive', { version: f.version }));
  $('#form-json').value = JSON.stringify(f.definition, null, 2);
  show($('#form-error'), false);
  show($('#form-ok'), false);
  $('#form-deactivate').hidden = !f.active;
  for (const b of $$('#forms-list button')) b.setAttribute('aria-current', String(Number(b.dataset.formId) === f.id));
}

function newForm() {
  S.editingForm = null;
  setText($('#form-editor-title'), t('qa.new_form'));
  setText($('#form-editor-version'), '');
  $('#form-json').value = JSON.stringify({ name: t('qa.new_form'), scoring: 'question', sections: [
    { id: 'opening', title: t('qa.forms.example_section'), weight: 1, questions: [
      { id: 'greeting', text: t('qa.forms.example_question'), type: 'yes_no', weight: 1 }] }] }, null, 2);
  $('#form-deactivate').hidden = true;
  show($('#form-error'), false);
  show($('#form-ok'), false);
}

async function saveForm(event) {
  event.preventDefault();
  show($('#form-error'), false);
  show($('#form-ok'), false);
  let definition;
  try {
    definition = JSON.parse($('#form-json').value);
  } catch (err) {
    setText($('#form-error'), t('qa.forms.bad_json', { why: err.message }));
    show($('#form-error'), true);
    return;
  }
  try {
    const saved = S.editingForm
      ? await api('PUT', `/api/qa/forms/${S.editingForm.id}`, definition)
      : await api('POST', '/api/qa/forms', definition);
    S.editingForm = saved;
    await loadForms(saved.id);
    setText($('#form-ok'), t('qa.forms.saved', { version: saved.version }));
    show($('#form-ok'), true);
  } catch (err) {
    setText($('#form-error'), errorText(err));
    show($('#form-error'), true);
  }
}

async function deactivateForm() {
  if (!S.editingForm || !window.confirm(t('qa.forms.deactivate_confirm', { name: S.editingForm.name }))) return;
  try {
    await api('DELETE', `/api/qa/forms/${S.editingForm.id}`);
    await loadForms();
  } catch (err) {
    toast(errorText(err));
  }
}

// ----------------------------------------------------------------- wiring

function wire() {
  window.addEventListener('hashchange', route);

  $('#filters').addEventListener('submit', (e) => {
    e.preventDefault();
    S.filters = readFilters();
    S.offset = 0;
    loadCalls().catch((err) => toast(errorText(err)));
  });
  $('#f-reset').addEventListener('click', () => {
    $('#filters').reset();
    S.filters = {};
    S.offset = 0;
    loadCalls().catch((err) => toast(errorText(err)));
  });
  $('#page-prev').addEventListener('click', () => { S.offset = Math.max(0, S.offset - PAGE_SIZE); loadCalls().catch((err) => toast(errorText(err))); });
  $('#page-next').addEventListener('click', () => { S.offset += PAGE_SIZE; loadCalls().catch((err) => toast(errorText(err))); });

  $('#call-back').addEventListener('click', () => { location.hash = '#/calls'; });
  const audio = $('#audio');
  $('#play-btn').addEventListener('click', () => {
    if (audio.paused) audio.play().catch((err) => toast(t('qa.player.cannot_play', { why: err.message })));
    else audio.pause();
  });
  $('#play-rate').addEventListener('change', () => { audio.playbackRate = Number($('#play-rate').value) || 1; });
  audio.addEventListener('play', () => { cancelAnimationFrame(S.raf); S.raf = requestAnimationFrame(tick); renderTime(); });
  audio.addEventListener('pause', () => { renderTime(); drawWaveform(); });
  audio.addEventListener('seeked', () => { highlight(audio.currentTime); drawWaveform(); renderTime(); });
  audio.addEventListener('timeupdate', () => { if (audio.paused) { highlight(audio.currentTime); renderTime(); } });
  audio.addEventListener('loadedmetadata', () => { drawWaveform(); renderTime(); });
  audio.addEventListener('error', () => {
    if (!audio.getAttribute('src')) return;
    setText($('#player-note'), t('qa.player.unplayable'));
    show($('#player-note'), true);
  });
  $('#waveform').addEventListener('click', (e) => {
    const total = duration();
    if (!total) return;
    const rect = e.currentTarget.getBoundingClientRect();
    seek(((e.clientX - rect.left) / rect.width) * total);
  });
  $('#transcript').addEventListener('click', (e) => {
    const w = e.target instanceof Element ? e.target.closest('.w') : null;
    if (w) seek(Number(w.dataset.start));
  });
  window.addEventListener('resize', () => { if (S.call) drawWaveform(); if (S.report && !$('#reports-view').hidden) drawChart(S.report); });
  for (const b of $$('.side-tab')) b.addEventListener('click', () => selectSide(b.dataset.side));
  $('#eval-form-select').addEventListener('change', () => { S.formId = Number($('#eval-form-select').value); renderForm(); });
  $('#eval-panel').addEventListener('submit', submitEvaluation);

  $('#disputes-status').addEventListener('change', () => loadDisputes().catch((err) => toast(errorText(err))));
  $('#report-form').addEventListener('submit', (e) => { e.preventDefault(); loadReport().catch((err) => toast(errorText(err))); });
  $('#form-editor').addEventListener('submit', saveForm);
  $('#form-new').addEventListener('click', newForm);
  $('#form-deactivate').addEventListener('click', deactivateForm);
}

wire();
// A language change redraws the current section from its data (the call view reloads its call).
onLanguageChange(() => { if (S.me) { if (S.role !== 'agent') fillFilterOptions(); route(); } });
startPage({
  page: 'qa',
  // Agents come for their own evaluations (the "My evaluations" section) and to dispute them.
  roles: ['qa', 'supervisor', 'admin', 'agent'],
  catalogues: ['qa'],
  onReady: start,
  onSignedOut: () => { S.me = null; stopPlayback(); },
});
