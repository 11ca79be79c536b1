// Agent softphone page: signalling WebSocket (README: "Softphone protocol"), one WebRTC line for
// the whole session, screen pop, call controls, wrap-up and history. Sign-in, header, language and
// toasts come from the page shell (/static/shell.js); every visible string from the agent catalogue.

import { Ringer, unlockAudio } from './ring.js';
import { formatTime, onLanguageChange, showSignIn, socketErrorText, startPage, t, toast, hideToast, el } from '/static/shell.js';
import { MIC_CONSTRAINTS, iceGatheringComplete, preferCodecs } from '/static/webrtc.js';
import { clock } from './clock.js';
import { agentTargets, queueTargets } from './transfer_targets.js';
import { chatDesk } from './chats.js';

// ----------------------------------------------------------------- constants

const PING_EVERY_MS = 5000;
const PONG_TIMEOUT_MS = 12000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 5000];
const ICE_GATHER_CAP_MS = 2000;
const PC_FAILED_RECOVER_MS = 3000;
const WRAPUP_KEEP_MS = 12 * 3600 * 1000;

const STATES = new Set(['offline', 'available', 'break', 'reserved', 'on_call', 'wrap_up', 'ringing']);

function stateName(state) {
  return STATES.has(state) ? t(`agent.state.${state}`) : String(state || t('agent.state.unknown'));
}

// ----------------------------------------------------------------- helpers

const $ = (sel, root = document) => root.querySelector(sel);
const nowSec = () => Date.now() / 1000;

function setText(node, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (node && node.textContent !== value) node.textContent = value;
}

function show(node, visible) {
  if (node && node.hidden === visible) node.hidden = !visible;
}

function targetLabel(target) {
  if (!target) return '';
  if (typeof target === 'string') return target;
  const value = String(target.value ?? target.username ?? target.name ?? target.number ?? '');
  return target.kind === 'queue' ? t('agent.target.queue', { name: value }) : value;
}

function tenantKey(agent) {
  if (!agent) return 'unknown';
  const tenant = agent.tenant;
  const t = tenant && typeof tenant === 'object' ? (tenant.slug ?? tenant.id ?? tenant.name) : tenant;
  return `${t ?? ''}/${agent.username ?? agent.id ?? ''}`;
}

function isTypingTarget(target) {
  if (!(target instanceof Element)) return false;
  return Boolean(target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]'));
}

// ----------------------------------------------------------------- session

const S = {
  view: 'loading',
  ws: null,
  wsOpened: false,
  welcomed: false,
  reconnecting: false,
  attempt: 0,
  reconnectTimer: null,
  pingTimer: null,
  lastHeard: 0,
  lastPong: 0,
  pc: null,
  pcFailedTimer: null,
  micStream: null,
  micTrack: null,
  gen: 0,
  lastOfferSdp: null,
  welcome: null,
  agent: null,
  dispositions: [],
  breakReasons: [],
  features: {},
  targets: { agents: [], queues: [] },
  callerIds: [],
  state: null,
  stateAt: 0,
  call: null,
  offer: null,
  offerAt: 0,
  offerAccepting: false,
  muted: false,
  dtmfSent: '',
  wrapups: [],
  lastEvent: null,
  notification: null,
  sessionKnown: false,
  history: [],
  voicemails: null,
  preview: newPreview([]),
};

const ringer = new Ringer();

window.softphone = {
  get pc() { return S.pc; },
  get ws() { return S.ws; },
  get state() { return S.state; },
  get call() { return S.call; },
  get offer() { return S.offer; },
  get welcome() { return S.welcome; },
  get muted() { return S.muted; },
  get wrapups() { return S.wrapups; },
  get offerSdp() { return S.lastOfferSdp; },
  get chats() { return chatDesk.snapshot(); },
};

// ----------------------------------------------------------------- DOM refs

const D = {};
for (const id of [
  'btn-notify', 'conn-indicator', 'conn-text', 'state-label', 'state-timer', 'btn-available', 'btn-break', 'break-reason',
  'btn-offline', 'idle-panel', 'idle-title', 'idle-text', 'idle-event', 'idle-icon-use', 'offer-card',
  'offer-countdown', 'offer-progress-bar', 'offer-caller', 'offer-queue', 'offer-waited', 'offer-ivr',
  'offer-ivr-inputs', 'offer-ivr-vars', 'btn-accept', 'btn-decline', 'call-panel', 'call-status-text',
  'call-queue', 'call-caller', 'call-timer', 'hold-banner', 'mute-banner', 'recording-banner',
  'conference-banner', 'conference-text', 'consult-panel', 'consult-text', 'btn-transfer-complete',
  'btn-conference', 'btn-transfer-cancel', 'btn-mute', 'btn-hold', 'btn-transfer', 'btn-recording',
  'btn-hangup', 'dtmf-sent', 'keypad', 'wrapup-panel', 'wrapup-caller', 'wrapup-queue', 'wrapup-more',
  'wrapup-clock', 'wrapup-timer-label', 'wrapup-timer', 'wrapup-form', 'wrapup-disposition', 'wrapup-notes',
  'wrapup-error', 'wrapup-save', 'history', 'history-refresh', 'transfer-dialog', 'transfer-form',
  'transfer-kind', 'transfer-value-field', 'transfer-value-label', 'transfer-value', 'transfer-number-field',
  'transfer-number', 'transfer-mode', 'transfer-error', 'transfer-close', 'transfer-go', 'toast', 'remote-audio', 'call-context', 'call-ivr-inputs', 'call-ivr-vars', 'idle-stats', 'stat-calls', 'stat-talk', 'stat-avg',
  'dial-card', 'dial-number', 'dial-caller-id', 'btn-dial', 'dial-pad', 'dial-error',
  'preview-card', 'preview-campaigns', 'preview-waiting', 'preview-note', 'btn-preview-next', 'preview-contact',
  'preview-name', 'preview-phone', 'preview-campaign', 'preview-caller-id', 'btn-preview-call', 'btn-preview-skip',
  'preview-attributes', 'preview-error', 'voicemails',
]) {
  D[id.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = document.getElementById(id);
}

// ----------------------------------------------------------------- storage

function readJSON(key) {
  try { return JSON.parse(localStorage.getItem(key) || 'null'); } catch (_) { return null; }
}

function writeJSON(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch (_) { /* private mode */ }
}

function wrapupKey() {
  return `softphone.wrapups.${tenantKey(S.agent)}`;
}

function saveWrapups() {
  if (S.agent) writeJSON(wrapupKey(), S.wrapups);
}

function loadWrapups() {
  const stored = readJSON(wrapupKey());
  const fresh = Array.isArray(stored)
    ? stored.filter((w) => w && w.call_id && Date.now() - (w.endedAt || 0) < WRAPUP_KEEP_MS)
    : [];
  // Keep what this page already has, add what a previous page left behind.
  const known = new Set(S.wrapups.map((w) => w.call_id));
  for (const w of fresh) if (!known.has(w.call_id)) S.wrapups.push(w);
}

// ----------------------------------------------------------------- session end

/** Stop everything that belongs to a signed-in session (logout, 4401, 4403). */
function endSession() {
  S.gen++;
  clearTimeout(S.reconnectTimer);
  stopHeartbeat();
  const ws = S.ws;
  S.ws = null;
  if (ws) {
    ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
    try { ws.close(1000, 'logout'); } catch (_) { /* ignore */ }
  }
  closePeer();
  if (S.micStream) for (const track of S.micStream.getTracks()) track.stop();
  S.micStream = S.micTrack = null;
  stopRinging();
  closeTransferDialog();
  S.welcomed = false;
  S.reconnecting = false;
  S.attempt = 0;
  S.state = S.call = S.offer = null;
  S.wrapups = [];
  S.muted = false;
  S.sessionKnown = false;
  S.preview = newPreview([]);
  chatDesk.reset();
  render();
}

// ----------------------------------------------------------------- websocket

function wsUrl() {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/agent/ws`;
}

function connect() {
  clearTimeout(S.reconnectTimer);
  S.reconnectTimer = null;
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch (_) {
    scheduleReconnect();
    return;
  }
  S.ws = ws;
  S.wsOpened = false;
  S.welcomed = false;
  ws.onopen = () => {
    if (ws !== S.ws) return;
    S.wsOpened = true;
    S.lastHeard = S.lastPong = Date.now();
    startHeartbeat();
    renderConn();
  };
  ws.onmessage = (event) => {
    if (ws !== S.ws) return;
    S.lastHeard = Date.now();
    let message;
    try { message = JSON.parse(event.data); } catch (_) { return; }
    if (message && typeof message === 'object') handle(message);
  };
  ws.onerror = () => { /* onclose follows */ };
  ws.onclose = (event) => {
    if (ws !== S.ws) return;
    socketClosed(event, S.wsOpened);
  };
  renderConn();
}

async function socketClosed(event, opened) {
  stopHeartbeat();
  S.ws = null;
  S.welcomed = false;
  if (event.code === 4401) {
    const had = S.sessionKnown;
    endSession();
    showSignIn(had ? 'shell.login.session_ended' : null);
    return;
  }
  if (event.code === 4403) {
    endSession();
    showSignIn('agent.error.not_agent');
    return;
  }
  if (event.code === 4409) {
    // The agent opened the softphone in another tab, which took over: do not fight it.
    closePeer();
    renderConn();
    toast(t('agent.toast.other_tab'), 'info', 0);
    return;
  }
  if (!opened) {
    // The handshake itself failed: maybe the server refused it over HTTP
    // (not signed in) rather than being unreachable. Ask the API.
    const status = await probeAuth();
    if (S.ws) return; // something else reconnected meanwhile
    if (status === 401) { endSession(); showSignIn(null); return; }
    if (status === 403) { endSession(); showSignIn('agent.error.not_agent'); return; }
  }
  scheduleReconnect();
}

async function probeAuth() {
  try {
    const reply = await fetch('/api/agent/calls?limit=1', { credentials: 'same-origin' });
    return reply.status;
  } catch (_) {
    return 0;
  }
}

function scheduleReconnect() {
  clearTimeout(S.reconnectTimer);
  const delay = BACKOFF_MS[Math.min(S.attempt, BACKOFF_MS.length - 1)];
  S.attempt++;
  S.reconnecting = true;
  S.reconnectTimer = setTimeout(connect, delay);
  renderConn();
}

/** Drop the current socket (heartbeat lost, audio failed) and reconnect. */
function forceReconnect(reason) {
  const ws = S.ws;
  S.ws = null;
  S.welcomed = false;
  stopHeartbeat();
  if (ws) {
    ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
    try { ws.close(4000, reason); } catch (_) { /* ignore */ }
  }
  scheduleReconnect();
}

function send(message) {
  const ws = S.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    if (message.type !== 'ping' && message.type !== 'rtc_offer') {
      toast(t('agent.toast.not_connected'), 'error', 6000);
    }
    return false;
  }
  ws.send(JSON.stringify(message));
  return true;
}

function startHeartbeat() {
  stopHeartbeat();
  S.pingTimer = setInterval(heartbeat, 1000);
  S.nextPing = Date.now() + PING_EVERY_MS;
}

function stopHeartbeat() {
  clearInterval(S.pingTimer);
  S.pingTimer = null;
}

function heartbeat() {
  const now = Date.now();
  const ws = S.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  if (now - S.lastPong > PONG_TIMEOUT_MS && S.pingOutstandingSince && now - S.pingOutstandingSince > PING_EVERY_MS) {
    forceReconnect('heartbeat timeout');
    return;
  }
  if (now >= S.nextPing) {
    S.nextPing = now + PING_EVERY_MS;
    if (!S.pingOutstandingSince) S.pingOutstandingSince = now;
    send({ type: 'ping', t: now / 1000 });
  }
}

// ----------------------------------------------------------------- messages

function handle(message) {
  switch (message.type) {
    case 'welcome': onWelcome(message); break;
    case 'pong':
      S.lastPong = Date.now();
      S.pingOutstandingSince = 0;
      break;
    case 'rtc_answer': onRtcAnswer(message); break;
    case 'state': applyState(message); render(); break;
    case 'offer': setOffer(message); render(); break;
    case 'offer_cancelled': onOfferCancelled(message); break;
    case 'call': setCall(message); render(); break;
    case 'call_ended': onCallEnded(message); break;
    case 'targets':
      S.targets = { agents: message.agents || [], queues: message.queues || [] };
      if (D.transferDialog.open) fillTransferValues();
      break;
    case 'preview': onPreview(message); break;
    case 'preview_skipped': onPreviewSkipped(message); break;
    case 'error': onError(message); break;
    default: chatDesk.handle(message); break;
  }
}

function onWelcome(message) {
  const gen = ++S.gen;
  S.welcome = message;
  S.welcomed = true;
  S.sessionKnown = true;
  S.reconnecting = false;
  S.attempt = 0;
  S.agent = message.agent || null;
  S.dispositions = Array.isArray(message.dispositions) ? message.dispositions : [];
  S.breakReasons = Array.isArray(message.break_reasons) ? message.break_reasons : [];
  S.features = message.features || {};
  S.targets = message.targets || { agents: [], queues: [] };
  S.callerIds = Array.isArray(message.caller_ids) ? message.caller_ids : [];
  S.lastPong = Date.now();
  S.pingOutstandingSince = 0;
  fillBreakReasons();
  fillCallerIds();
  setPreviewCampaigns(message.preview, Boolean(message.call));
  loadWrapups();
  applyState(message.state || null);
  if (message.call) setCall(message.call);
  else S.call = null;
  if (message.offer && !(message.call && message.call.call_id === message.offer.call_id)) setOffer(message.offer);
  else clearOffer();
  chatDesk.welcome(message);
  render();
  refreshHistory();
  offerNotificationsButton();
  setupMedia(gen, message.ice_servers || []);
}

function applyState(state) {
  S.state = state;
  S.stateAt = nowSec();
  if (state && state.state === 'wrap_up' && S.wrapups.length && 'wrapup_until' in state) {
    const w = S.wrapups[S.wrapups.length - 1];
    if (state.wrapup_until !== undefined) w.wrapup_until = state.wrapup_until;
    saveWrapups();
  }
}

function setOffer(offer) {
  const same = S.offer && S.offer.call_id === offer.call_id;
  S.offer = offer;
  S.offerAt = nowSec(); // `waited` counts from this message
  if (!same) {
    S.offerFirstAt = S.offerAt;
    S.offerAccepting = false;
    S.lastEvent = null;
    rememberContext(offer);
    startRinging(offer);
  }
}

function clearOffer() {
  S.offer = null;
  S.offerAccepting = false;
  stopRinging();
}

function onOfferCancelled(message) {
  if (!S.offer || (message.call_id && message.call_id !== S.offer.call_id)) return;
  const offer = S.offer;
  clearOffer();
  if (!S.call || S.call.call_id !== offer.call_id) {
    const reason = { caller_hangup: 'hangup', caller_hung_up: 'hangup' }[message.reason] || message.reason;
    // Kept as its parts: the sentence is rebuilt in the language of the moment.
    S.lastEvent = { caller: offer.caller || '', reason: REASONS.has(reason) ? reason : 'cancelled', at: new Date() };
  }
  render();
}

const REASONS = new Set(['timeout', 'hangup', 'taken', 'declined', 'cancelled']);

function lastEventText() {
  const e = S.lastEvent;
  return t('agent.idle.missed', {
    caller: e.caller || t('agent.caller.unknown'), why: t(`agent.missed.${e.reason}`), time: formatTime(e.at),
  });
}

function setCall(call) {
  const isNew = !S.call || S.call.call_id !== call.call_id;
  S.call = call;
  if (isNew) {
    S.callAt = nowSec();
    S.dtmfSent = '';
    setMuted(false);
  }
  if (S.offer && S.offer.call_id === call.call_id) clearOffer();
  if (call.consult || call.conference) closeTransferDialog();
  if (S.preview.calling) { S.preview.contact = null; S.preview.pending = null; } // the contact is being called
}

function onCallEnded(message) {
  const call = S.call && (!message.call_id || S.call.call_id === message.call_id) ? S.call : null;
  if (S.offer && message.call_id && S.offer.call_id === message.call_id) clearOffer();
  if (call) {
    S.call = null;
    setMuted(false);
    closeTransferDialog();
  }
  // Placed, answered or not, the contact's attempt is over (an unanswered one is retried by the campaign).
  if (S.preview.calling) Object.assign(S.preview, { calling: false, contact: null, pending: null });
  const callId = message.call_id || (call && call.call_id);
  // A call the agent placed that nobody answered has no wrap-up (`wrapup` false).
  if (callId && message.wrapup !== false && !S.wrapups.some((w) => w.call_id === callId)) {
    S.wrapups.push({
      call_id: callId,
      caller: call ? call.dialed || call.caller : '',
      queue: call ? call.queue : '',
      cause: message.cause || null,
      wrapup_until: message.wrapup_until ?? null,
      endedAt: Date.now(),
      notes: '',
      disposition: '',
    });
    saveWrapups();
  }
  render();
  refreshHistory();
}

function onError(message) {
  // The node's error_id in the agent's language (agent.error.<id>); its English message only after a lead.
  const text = message.error_id || message.message ? socketErrorText('agent', message) : t('agent.error.refused');
  toast(text, 'error');
  chatDesk.refused(message);
  if (PREVIEW_REFS.has(message.ref) || (message.ref === 'dial' && S.preview.calling)) {
    previewRefused(message, text);
  } else if (message.ref === 'dial') {
    setText(D.dialError, text);
    show(D.dialError, true);
  }
  if (message.ref === 'accept') {
    S.offerAccepting = false;
    render();
  }
}

// ----------------------------------------------------------------- media

async function setupMedia(gen, iceServers) {
  closePeer();
  if (!S.micTrack || S.micTrack.readyState === 'ended') {
    try {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error(t('agent.mic.https'));
      S.micStream = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
      S.micTrack = S.micStream.getAudioTracks()[0] || null;
      if (S.micTrack) {
        S.micTrack.enabled = !S.muted;
        S.micTrack.addEventListener('ended', () => {
          toast(t('agent.mic.disconnected'), 'error', 0);
        });
      }
    } catch (error) {
      S.micStream = S.micTrack = null;
      const why = error && error.name === 'NotAllowedError'
        ? t('agent.mic.denied')
        : (error && error.message) || t('agent.mic.none');
      toast(t('agent.mic.unavailable', { why }), 'error', 0);
    }
    if (gen !== S.gen) return;
  }

  let pc;
  try {
    pc = new RTCPeerConnection({ iceServers });
  } catch (error) {
    toast(t('agent.audio.failed', { why: error.message || error }), 'error', 0);
    return;
  }
  S.pc = pc;
  pc.ontrack = (event) => {
    if (pc !== S.pc) return;
    const audio = D.remoteAudio;
    audio.srcObject = event.streams[0] || new MediaStream([event.track]);
    const playing = audio.play();
    if (playing && playing.catch) playing.catch(() => { /* resumed on the next click */ });
  };
  pc.onconnectionstatechange = () => {
    if (pc !== S.pc) return;
    clearTimeout(S.pcFailedTimer);
    if (pc.connectionState === 'failed') {
      // The line is gone: a fresh socket brings a fresh welcome and a new line.
      S.pcFailedTimer = setTimeout(() => {
        if (pc === S.pc && pc.connectionState === 'failed' && S.ws) forceReconnect('audio failed');
      }, PC_FAILED_RECOVER_MS);
    }
    renderConn();
  };

  let transceiver;
  if (S.micTrack) {
    const sender = pc.addTrack(S.micTrack, S.micStream);
    transceiver = pc.getTransceivers().find((t) => t.sender === sender);
  } else {
    transceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
  }
  preferCodecs(transceiver);

  try {
    const offer = await pc.createOffer();
    if (pc !== S.pc) return;
    await pc.setLocalDescription(offer);
    await iceGatheringComplete(pc, ICE_GATHER_CAP_MS);
  } catch (error) {
    if (pc === S.pc) toast(t('agent.audio.failed', { why: error.message || error }), 'error', 0);
    return;
  }
  if (pc !== S.pc || gen !== S.gen) return;
  S.lastOfferSdp = pc.localDescription.sdp;
  send({ type: 'rtc_offer', sdp: pc.localDescription.sdp });
  renderConn();
}

async function onRtcAnswer(message) {
  const pc = S.pc;
  if (!pc || pc.signalingState !== 'have-local-offer' || !message.sdp) return;
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
  } catch (error) {
    if (pc === S.pc) toast(t('agent.audio.failed', { why: error.message || error }), 'error', 0);
  }
  renderConn();
}

function closePeer() {
  clearTimeout(S.pcFailedTimer);
  const pc = S.pc;
  S.pc = null;
  if (!pc) return;
  pc.ontrack = pc.onconnectionstatechange = null;
  try { pc.close(); } catch (_) { /* ignore */ }
}

function setMuted(muted) {
  S.muted = muted;
  if (S.micTrack) S.micTrack.enabled = !muted;
}

// ----------------------------------------------------------------- ringing & notifications

function startRinging(offer) {
  try { ringer.start(); } catch (_) { /* no audio output */ }
  closeNotification();
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  if (!document.hidden && document.hasFocus()) return;
  try {
    const n = new Notification(t('agent.offer.title'), {
      body: [offer.caller, offer.queue].filter(Boolean).join(' · '),
      tag: `offer-${offer.call_id}`,
      requireInteraction: true,
    });
    n.onclick = () => { window.focus(); n.close(); };
    S.notification = n;
  } catch (_) { /* e.g. Android Chrome needs a service worker */ }
}

function stopRinging() {
  ringer.stop();
  closeNotification();
}

function closeNotification() {
  if (S.notification) {
    try { S.notification.close(); } catch (_) { /* ignore */ }
    S.notification = null;
  }
}

function requestNotifications() {
  if (!('Notification' in window) || Notification.permission !== 'default') return;
  try {
    const result = Notification.requestPermission();
    if (result && result.then) result.then(offerNotificationsButton, offerNotificationsButton);
  } catch (_) { /* old API */ }
}

function offerNotificationsButton() {
  show(D.btnNotify, 'Notification' in window && Notification.permission === 'default');
}

// ----------------------------------------------------------------- actions

function setState(state) {
  let reason = null;
  if (state === 'break') reason = D.breakReason.value || null;
  send({ type: 'set_state', state, reason });
}

function accept() {
  if (!S.offer || S.offerAccepting) return;
  if (send({ type: 'accept', call_id: S.offer.call_id })) {
    S.offerAccepting = true;
    stopRinging();
    render();
  }
}

function decline() {
  if (!S.offer) return;
  if (send({ type: 'decline', call_id: S.offer.call_id })) {
    clearOffer();
    render();
  }
}

function hangup() {
  if (S.call) send({ type: 'hangup' });
}

function toggleHold() {
  if (S.call) send({ type: 'hold', on: !S.call.held });
}

function toggleMute() {
  if (!S.call) return;
  setMuted(!S.muted);
  render();
}

function toggleRecording() {
  if (S.call && S.features.recording_pause) send({ type: 'recording', paused: !S.call.recording_paused });
}

function sendDigit(digit) {
  if (!S.call) return;
  if (send({ type: 'dtmf', digits: digit })) {
    S.dtmfSent = (S.dtmfSent + digit).slice(-24);
    setText(D.dtmfSent, S.dtmfSent);
  }
}

// ----------------------------------------------------------------- dial pad (calls the agent places)

function fillCallerIds() {
  const previous = D.dialCallerId.value;
  const options = S.callerIds.map((n) => el('option', { value: n, text: n }));
  if (!options.length) options.push(el('option', { value: '', text: t('agent.dial.no_caller_id'), disabled: '' }));
  D.dialCallerId.replaceChildren(...options);
  if (previous && S.callerIds.includes(previous)) D.dialCallerId.value = previous;
}

/** Ask the node to call `number` (the node normalises it and applies the dialing rules). */
function dial(number) {
  const value = String(number || '').trim();
  show(D.dialError, false);
  if (!value) {
    setText(D.dialError, t('agent.dial.enter_number'));
    show(D.dialError, true);
    D.dialNumber.focus();
    return;
  }
  unlockAudio();
  send({ type: 'dial', number: value, caller_id: D.dialCallerId.value || null });
}

function submitDial(event) {
  event.preventDefault();
  dial(D.dialNumber.value);
}

/** A click in a list with call-back buttons (Recent calls, Voicemail): dial the button's `data-dial`. */
function dialFromList(event) {
  const button = event.target instanceof Element ? event.target.closest('[data-dial]') : null;
  if (button) dial(button.dataset.dial);
}

function pressDialKey(key) {
  const input = D.dialNumber;
  input.value = key === 'back' ? input.value.slice(0, -1) : (input.value + key).slice(0, 40);
  show(D.dialError, false);
  input.focus();
}

function renderDial() {
  show(D.dialCard, !S.offer && !S.call);
  D.btnDial.disabled = !(S.ws && S.ws.readyState === WebSocket.OPEN && S.welcomed);
}

// ----------------------------------------------------------------- preview campaigns (the agent calls contacts one by one)

/** The requests whose refusals the preview card words (a `dial` one too while it calls its contact). */
const PREVIEW_REFS = new Set(['preview_next', 'preview_skip']);

/** The card's state: the campaigns (welcome's `preview`), the contact held (a `preview` message),
 * the request awaiting its answer, whether the current call is the contact's, the contact last skipped. */
function newPreview(campaigns) {
  return { campaigns, contact: null, pending: null, calling: false, skipped: null };
}

/** Each welcome names the running preview campaigns this agent works. A contact held across a
 * reconnect stays while its campaign runs (the node still holds it for this agent); a call to it
 * stays the contact's while the welcome brings that call back. */
function setPreviewCampaigns(campaigns, inCall) {
  const list = Array.isArray(campaigns) ? campaigns.filter((c) => c && c.id !== undefined) : [];
  const held = S.preview.contact;
  const keep = held && held.campaign && list.some((c) => c.id === held.campaign.id);
  S.preview = { ...newPreview(list), contact: keep ? held : null, calling: S.preview.calling && inCall,
    skipped: S.preview.skipped };
}

function onPreview(message) {
  Object.assign(S.preview, { contact: message, pending: null, skipped: null });
  show(D.previewError, false);
  render();
}

function onPreviewSkipped(message) {
  const held = S.preview.contact;
  if (held && held.attempt_id === message.attempt_id) {
    S.preview.contact = null;
    S.preview.skipped = held.contact || {};
  }
  S.preview.pending = null;
  render();
}

/** A refused preview request (or the contact's dial): worded on the card; a contact no longer the
 * agent's leaves it, any other refusal keeps it (e.g. go Available, then Call again). */
function previewRefused(message, text) {
  const p = S.preview;
  p.pending = null;
  if (message.ref === 'dial' && !S.call) p.calling = false; // refused before the call was placed
  if (message.error_id === 'preview-gone') p.contact = null;
  setText(D.previewError, text);
  show(D.previewError, true);
  render();
}

function previewAsk(message, pending) {
  show(D.previewError, false);
  if (!send(message)) return false;
  S.preview.pending = pending;
  render();
  return true;
}

function previewNext() {
  if (S.preview.pending || S.preview.contact) return;
  previewAsk({ type: 'preview_next' }, 'next');
}

function previewCall() {
  const held = S.preview.contact;
  if (!held || S.preview.pending) return;
  unlockAudio();
  if (previewAsk({ type: 'dial', attempt_id: held.attempt_id }, 'call')) S.preview.calling = true;
}

function previewSkip() {
  const held = S.preview.contact;
  if (held && !S.preview.pending) previewAsk({ type: 'preview_skip', attempt_id: held.attempt_id }, 'skip');
}

function renderPreview() {
  const p = S.preview;
  show(D.previewCard, p.campaigns.length > 0 && !S.offer && !S.call);
  if (D.previewCard.hidden) return;
  const idle = S.ws && S.ws.readyState === WebSocket.OPEN && S.welcomed && !p.pending;
  D.previewCampaigns.replaceChildren(...p.campaigns.map((c) => el('span', { className: 'chip', text: String(c.name ?? '') })));
  const held = p.contact;
  show(D.previewWaiting, !held);
  show(D.previewContact, Boolean(held));
  D.btnPreviewNext.disabled = D.btnPreviewCall.disabled = D.btnPreviewSkip.disabled = !idle;
  const skipped = p.skipped;
  setText(D.previewNote, skipped ? t('agent.preview.skipped', { who: skipped.name || skipped.phone || '' }) : '');
  show(D.previewNote, Boolean(skipped));
  if (!held) { D.previewContact.dataset.attemptId = ''; return; }
  if (D.previewContact.dataset.attemptId === String(held.attempt_id)) return;
  D.previewContact.dataset.attemptId = String(held.attempt_id);
  const contact = held.contact || {};
  setText(D.previewName, contact.name);
  show(D.previewName, Boolean(contact.name));
  setText(D.previewPhone, contact.phone);
  setText(D.previewCampaign, held.campaign ? held.campaign.name : '');
  setText(D.previewCallerId, held.caller_id);
  const attributes = contact.attributes && typeof contact.attributes === 'object' ? contact.attributes : {};
  fillKeyValues(D.previewAttributes, attributes, 'agent.preview.no_details');
}

/** The customer's number of a call in the history: who called, or whom the agent called. */
function partyOf(call) {
  return call.direction === 'outbound' ? call.dialed : call.caller;
}

// ----------------------------------------------------------------- transfer dialog

function openTransferDialog() {
  if (!S.call || S.call.consult) return;
  D.transferKind.value = 'agent';
  D.transferMode.value = 'blind';
  D.transferNumber.value = '';
  setText(D.transferError, '');
  show(D.transferError, false);
  fillTransferValues();
  if (typeof D.transferDialog.showModal === 'function') D.transferDialog.showModal();
  else D.transferDialog.setAttribute('open', '');
  (D.transferValueField.hidden ? D.transferNumber : D.transferValue).focus();
}

function closeTransferDialog() {
  if (!D.transferDialog.open) return;
  if (typeof D.transferDialog.close === 'function') D.transferDialog.close();
  else D.transferDialog.removeAttribute('open');
}

function fillTransferValues() {
  const kind = D.transferKind.value;
  const isNumber = kind === 'number';
  show(D.transferValueField, !isNumber);
  show(D.transferNumberField, isNumber);
  if (isNumber) return;
  const previous = D.transferValue.value;
  const options = [];
  if (kind === 'agent') {
    setText(D.transferValueLabel, t('agent.transfer.agent'));
    for (const a of agentTargets(S.targets, S.agent && S.agent.username)) {
      options.push(el('option', { value: a.username, text: `${a.username} — ${stateName(a.state)}` }));
    }
  } else {
    setText(D.transferValueLabel, t('agent.transfer.queue'));
    for (const name of queueTargets(S.targets)) options.push(el('option', { value: name, text: name }));
  }
  if (!options.length) options.push(el('option', { value: '', text: t(kind === 'agent' ? 'agent.transfer.no_agents' : 'agent.transfer.no_queues'), disabled: '' }));
  D.transferValue.replaceChildren(...options);
  if (previous && [...D.transferValue.options].some((o) => o.value === previous)) D.transferValue.value = previous;
}

function submitTransfer(event) {
  event.preventDefault();
  const kind = D.transferKind.value;
  const value = kind === 'number' ? D.transferNumber.value.replace(/[\s().-]/g, '') : D.transferValue.value;
  if (!value) {
    setText(D.transferError, t(`agent.transfer.choose_${kind}`));
    show(D.transferError, true);
    return;
  }
  if (send({ type: 'transfer', mode: D.transferMode.value === 'consult' ? 'consult' : 'blind', target: { kind, value } })) {
    closeTransferDialog();
  }
}

// ----------------------------------------------------------------- wrap-up

function saveWrapup(event) {
  event.preventDefault();
  const w = S.wrapups[0];
  if (!w) return;
  const disposition = D.wrapupDisposition.value;
  if (S.dispositions.length && !disposition) {
    setText(D.wrapupError, t('agent.wrapup.choose'));
    show(D.wrapupError, true);
    D.wrapupDisposition.focus();
    return;
  }
  const notes = D.wrapupNotes.value;
  if (!send({ type: 'wrapup', call_id: w.call_id, disposition: disposition || null, notes })) return;
  S.wrapups.shift();
  saveWrapups();
  show(D.wrapupError, false);
  render();
  refreshHistory();
  setTimeout(refreshHistory, 800); // the server may store it a moment later
}

function renderWrapup() {
  const w = S.wrapups[0];
  show(D.wrapupPanel, Boolean(w));
  if (!w) { D.wrapupPanel.dataset.callId = ''; return; }
  if (D.wrapupPanel.dataset.callId !== String(w.call_id)) {
    D.wrapupPanel.dataset.callId = String(w.call_id);
    const options = [el('option', { value: '', text: t(S.dispositions.length ? 'agent.wrapup.placeholder' : 'agent.wrapup.none') })];
    for (const d of S.dispositions) options.push(el('option', { value: d.code, text: d.label || d.code }));
    D.wrapupDisposition.replaceChildren(...options);
    D.wrapupDisposition.value = w.disposition || '';
    D.wrapupNotes.value = w.notes || '';
    show(D.wrapupError, false);
  }
  setText(D.wrapupCaller, w.caller || t('agent.caller.unknown'));
  setText(D.wrapupQueue, w.queue || '');
  show(D.wrapupQueue, Boolean(w.queue));
  const more = S.wrapups.length - 1;
  setText(D.wrapupMore, more > 0 ? t(more > 1 ? 'agent.wrapup.more_many' : 'agent.wrapup.more_one', { count: more }) : '');
  show(D.wrapupMore, more > 0);
  renderWrapupTimer();
}

function renderWrapupTimer() {
  const w = S.wrapups[0];
  if (!w) return;
  const until = w.wrapup_until;
  if (until === null || until === undefined) {
    show(D.wrapupClock, false);
    setText(D.wrapupTimer, '');
    return;
  }
  show(D.wrapupClock, true);
  const left = until - nowSec();
  const over = left <= 0;
  D.wrapupClock.classList.toggle('is-over', over);
  setText(D.wrapupTimerLabel, t(over ? 'agent.wrapup.take_time' : 'agent.wrapup.time_left'));
  setText(D.wrapupTimer, over ? t('agent.wrapup.over') : clock(Math.ceil(left)));
}

// ----------------------------------------------------------------- history

let historySeq = 0;

async function refreshHistory() {
  refreshVoicemails();
  const seq = ++historySeq;
  let rows;
  try {
    const reply = await fetch('/api/agent/calls?limit=50', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (seq !== historySeq) return;
    if (!reply.ok) {
      renderHistoryMessage(reply.status === 404 ? 'agent.history.unavailable' : 'agent.history.failed_http', { status: reply.status });
      return;
    }
    const data = await reply.json();
    rows = Array.isArray(data) ? data : (data && (data.calls || data.items)) || [];
  } catch (_) {
    if (seq === historySeq) renderHistoryMessage('agent.history.failed');
    return;
  }
  if (seq !== historySeq) return;
  renderHistory(rows);
}

function renderHistoryMessage(key, params) {
  S.historyNote = [key, params];
  const tbody = D.history.tBodies[0];
  tbody.replaceChildren(el('tr', { className: 'history-empty' }, el('td', { colspan: '3', text: t(key, params) })));
}

function parseDate(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

function isToday(date) {
  return Boolean(date) && date.toDateString() === new Date().toDateString();
}

function renderHistory(rows) {
  S.history = rows;
  S.historyNote = null;
  renderStats();
  const tbody = D.history.tBodies[0];
  if (!rows.length) {
    renderHistoryMessage('agent.history.empty');
    return;
  }
  const trs = rows.map((call) => {
    const date = parseDate(call.answered_at) || parseDate(call.ended_at);
    const duration = call.duration === null || call.duration === undefined ? '' : clock(call.duration);
    const timeCell = el('td', { className: 'history-time', title: date ? formatTime(date, { date: true }) : '' },
      el('div', { className: 'history-clock', text: date ? formatTime(date, { date: !isToday(date) }) : '—' }),
      el('div', { className: 'history-sub', text: duration }));
    const sub = [call.direction === 'outbound' ? t('agent.dial.outbound') : call.queue, call.notes].filter(Boolean).join(' · ');
    const party = partyOf(call);
    const callBack = party ? el('button', {
      type: 'button', className: 'btn-call-back', dataset: { dial: party },
      title: t('agent.history.call_back', { number: party }), 'aria-label': t('agent.history.call_back', { number: party }),
    }, svgIcon('#i-phone')) : null;
    const callerCell = el('td', { className: 'history-caller' },
      el('div', { className: 'history-caller-line' },
        el('span', { className: 'mono history-number', title: party || '', text: party || t('agent.caller.unknown') }), callBack),
      sub ? el('div', { className: 'history-sub', title: sub, text: sub }) : null);
    const result = call.disposition_label || call.disposition || '';
    const resultCell = el('td', { className: 'history-result' },
      result ? el('span', { className: 'chip chip-result', title: result, text: result })
        : el('span', { className: 'chip chip-pending', text: t(call.ended_at ? 'agent.history.none' : 'agent.history.live') }));
    return el('tr', { dataset: { callId: String(call.id) } }, callerCell, timeCell, resultCell);
  });
  tbody.replaceChildren(...trs);
}

// ----------------------------------------------------------------- voicemail (messages to call back)

let voicemailSeq = 0;

/** The tenant's latest voicemails (refreshed with the history: same triggers). */
async function refreshVoicemails() {
  const seq = ++voicemailSeq;
  let rows = null;
  try {
    const reply = await fetch('/api/voicemails?limit=20', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (reply.ok) rows = await reply.json();
  } catch (_) { /* rows stays null: said below */ }
  if (seq !== voicemailSeq) return;
  if (!Array.isArray(rows) && S.voicemails) return; // keep the list (and a message playing): the next refresh retries
  S.voicemails = Array.isArray(rows) ? rows : null;
  renderVoicemails();
}

/** One line per voicemail: caller, when, how long, called back or not, Call back (dials as the
 * history's button does), and the message to play. A player already on the page is kept, so a
 * refresh does not stop a message being listened to. */
function renderVoicemails() {
  const list = D.voicemails;
  if (!S.voicemails || !S.voicemails.length) {
    const key = S.voicemails ? 'agent.voicemail.empty' : 'agent.voicemail.failed';
    list.replaceChildren(el('li', { className: 'voicemail-empty', text: t(key) }));
    return;
  }
  const players = new Map([...list.querySelectorAll('audio[data-voicemail-id]')].map((a) => [a.dataset.voicemailId, a]));
  list.replaceChildren(...S.voicemails.map((vm) => {
    const id = String(vm.id);
    const date = parseDate(vm.received_at);
    const when = [date ? formatTime(date, { date: !isToday(date) }) : '', clock(vm.seconds)].filter(Boolean).join(' · ');
    const caller = vm.caller || '';
    const audio = players.get(id) || el('audio', {
      className: 'voicemail-audio', controls: true, preload: 'none', src: `/api/voicemails/${encodeURIComponent(id)}/audio`,
      dataset: { voicemailId: id },
    });
    audio.setAttribute('aria-label', t('agent.voicemail.listen', { number: caller || t('agent.caller.unknown') }));
    const callBack = caller ? el('button', {
      type: 'button', className: 'btn btn-secondary btn-voicemail-call', dataset: { dial: caller },
      title: t('agent.history.call_back', { number: caller }),
    }, svgIcon('#i-phone'), el('span', { text: t('agent.voicemail.call_back') })) : null;
    return el('li', { dataset: { voicemailId: id } },
      el('div', { className: 'voicemail-who' },
        el('div', { className: 'voicemail-line' },
          el('span', { className: 'mono history-number voicemail-caller', title: caller, text: caller || t('agent.caller.unknown') }),
          vm.called_back ? el('span', { className: 'chip chip-result voicemail-called-back', text: t('agent.voicemail.called_back') }) : null),
        el('div', { className: 'history-sub voicemail-when', title: date ? formatTime(date, { date: true }) : '', text: when })),
      callBack,
      audio);
  }));
}

function svgIcon(href) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
  use.setAttribute('href', href);
  svg.append(use);
  return svg;
}

function renderStats() {
  const today = (S.history || []).filter((call) => isToday(parseDate(call.answered_at) || parseDate(call.ended_at)));
  const talk = today.reduce((sum, call) => sum + (Number(call.duration) || 0), 0);
  setText(D.statCalls, String(today.length));
  setText(D.statTalk, clock(talk));
  setText(D.statAvg, clock(today.length ? talk / today.length : 0));
  show(D.idleStats, today.length > 0);
}

// ----------------------------------------------------------------- rendering

function stateView() {
  if (!S.state) return { key: 'offline', label: stateName('offline') };
  if (S.offer && !S.call) return { key: 'ringing', label: stateName('ringing') };
  if (S.call) return { key: 'on_call', label: stateName('on_call') };
  const state = S.state.state;
  if (state === 'break') {
    return { key: 'break', label: S.state.reason ? t('agent.state.break_reason', { reason: S.state.reason }) : stateName('break') };
  }
  return { key: STATES.has(state) ? state : 'offline', label: state ? stateName(state) : stateName('offline') };
}

function fillBreakReasons() {
  const previous = D.breakReason.value;
  const reasons = S.breakReasons.length ? S.breakReasons : [];
  const options = reasons.map((r) => el('option', { value: r, text: r }));
  if (!options.length) options.push(el('option', { value: '', text: stateName('break') }));
  D.breakReason.replaceChildren(...options);
  if (previous && reasons.includes(previous)) D.breakReason.value = previous;
  show(D.breakReason, reasons.length > 0);
}

function renderConn() {
  const ws = S.ws;
  let status;
  let text;
  const wsUp = ws && ws.readyState === WebSocket.OPEN && S.welcomed;
  if (!wsUp) {
    if (S.reconnecting) { status = 'reconnecting'; text = 'reconnecting'; }
    else if (ws) { status = 'reconnecting'; text = S.sessionKnown ? 'reconnecting' : 'connecting'; }
    else { status = 'offline'; text = 'offline'; }
  } else {
    const pcState = S.pc ? S.pc.connectionState : 'new';
    if (pcState === 'connected') { status = 'connected'; text = 'connected'; }
    else if (pcState === 'failed' || pcState === 'closed') { status = 'offline'; text = 'audio_lost'; }
    else if (pcState === 'disconnected') { status = 'reconnecting'; text = 'audio_reconnecting'; }
    else { status = 'reconnecting'; text = 'audio_connecting'; }
  }
  if (D.connIndicator.dataset.status !== status) D.connIndicator.dataset.status = status;
  setText(D.connText, t(`agent.conn.${text}`));
  D.connIndicator.title = t('agent.conn.title', {
    server: t(wsUp ? 'agent.conn.server_up' : 'agent.conn.server_down'),
    audio: S.pc ? S.pc.connectionState : t('agent.conn.audio_none'),
  });
  const canAct = Boolean(wsUp);
  for (const button of [D.btnAvailable, D.btnBreak, D.btnOffline]) button.disabled = !canAct;
  D.breakReason.disabled = !canAct;
}

function render() {
  const view = stateView();
  document.body.dataset.state = view.key;
  setText(D.stateLabel, view.label);
  const current = S.state ? S.state.state : 'offline';
  D.btnAvailable.setAttribute('aria-pressed', String(current === 'available'));
  D.btnBreak.setAttribute('aria-pressed', String(current === 'break'));
  D.btnOffline.setAttribute('aria-pressed', String(current === 'offline'));
  renderConn();
  renderIdle(view);
  renderOffer();
  renderCall();
  renderPreview();
  renderDial();
  renderWrapup();
  tick();
}

function renderIdle(view) {
  const busy = Boolean(S.offer || S.call || S.wrapups.length || chatDesk.busy());
  show(D.idlePanel, !busy);
  if (busy) return;
  const icon = { available: '#i-check', break: '#i-coffee', reserved: '#i-phone', on_call: '#i-phone', wrap_up: '#i-check' };
  const known = view.key in icon || view.key === 'offline';
  D.idleIconUse.setAttribute('href', icon[view.key] || '#i-power');
  setText(D.idleTitle, !known ? view.label : view.key === 'break' && S.state && S.state.reason
    ? t('agent.idle.break_reason', { reason: S.state.reason }) : t(`agent.idle.${view.key}.title`));
  setText(D.idleText, known ? t(`agent.idle.${view.key}.text`) : '');
  setText(D.idleEvent, S.lastEvent ? lastEventText() : '');
  show(D.idleEvent, Boolean(S.lastEvent));
}

function renderOffer() {
  const offer = S.offer;
  show(D.offerCard, Boolean(offer));
  if (!offer) { D.offerCard.dataset.callId = ''; return; }
  D.offerCard.classList.toggle('is-accepting', S.offerAccepting);
  D.btnAccept.disabled = S.offerAccepting;
  D.btnDecline.disabled = S.offerAccepting;
  setText(D.btnAccept.querySelector('.btn-text'), t(S.offerAccepting ? 'agent.offer.connecting' : 'agent.offer.accept'));
  if (D.offerCard.dataset.callId === String(offer.call_id) && D.offerCard.dataset.rendered === JSON.stringify(offer.ivr || {})) return;
  D.offerCard.dataset.callId = String(offer.call_id);
  D.offerCard.dataset.rendered = JSON.stringify(offer.ivr || {});
  setText(D.offerCaller, offer.caller || t('agent.caller.unknown'));
  setText(D.offerQueue, offer.queue || '—');
  renderIvr(offer.ivr, D.offerIvrInputs, D.offerIvrVars);
}

const INPUT_KINDS = ['pressed', 'said', 'entered'];

/** A caller's input in the screen pop ({kind: pressed|said|entered, value} from the node), in the
 * page's language; an input without a kind shows the node's own words (`input`). */
function inputText(item) {
  if (INPUT_KINDS.includes(item.kind)) return t(`agent.ivr.${item.kind}`, { value: item.value ?? '' });
  return item.input !== undefined ? String(item.input) : '';
}

/** The IVR's inputs (list) and variables (key/value table) into the given elements. */
function renderIvr(ivrData, list, table) {
  const ivr = ivrData || {};
  const inputs = Array.isArray(ivr.inputs) ? ivr.inputs : [];
  const variables = ivr.variables && typeof ivr.variables === 'object' ? ivr.variables : {};
  list.replaceChildren(...(inputs.length
    ? inputs.map((item) => el('li', {},
      el('span', { className: 'ivr-node', text: item && item.node !== undefined ? String(item.node) : '' }),
      el('span', { className: 'ivr-arrow', 'aria-hidden': 'true', text: '→' }),
      el('span', { className: 'ivr-input', text: item ? inputText(item) : '' })))
    : [el('li', { className: 'muted', text: t('agent.ivr.no_inputs') })]));
  fillKeyValues(table, variables, 'agent.ivr.no_details');
}

/** A key/value table (IVR variables, a contact's attributes); `emptyKey` words an empty one. */
function fillKeyValues(table, values, emptyKey) {
  const entries = Object.entries(values);
  table.tBodies[0].replaceChildren(...(entries.length
    ? entries.map(([key, value]) => el('tr', {},
      el('th', { scope: 'row', text: key }),
      el('td', { text: value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value ?? '') })))
    : [el('tr', {}, el('td', { className: 'muted', colspan: '2', text: t(emptyKey) }))]));
}

/** The screen-pop data of a call, kept for the call panel (also across a reload). */
function rememberContext(offer) {
  if (!offer || !offer.call_id || !offer.ivr) return;
  const all = readSession('softphone.context') || {};
  all[offer.call_id] = { ivr: offer.ivr, at: Date.now() };
  const recent = Object.entries(all).sort((a, b) => b[1].at - a[1].at).slice(0, 5);
  writeSession('softphone.context', Object.fromEntries(recent));
}

function contextOf(callId) {
  const all = readSession('softphone.context') || {};
  return all[callId] ? all[callId].ivr : null;
}

function readSession(key) {
  try { return JSON.parse(sessionStorage.getItem(key) || 'null'); } catch (_) { return null; }
}

function writeSession(key, value) {
  try { sessionStorage.setItem(key, JSON.stringify(value)); } catch (_) { /* ignore */ }
}

function renderCall() {
  const call = S.call;
  show(D.callPanel, Boolean(call));
  if (!call) return;
  const consult = call.consult || null;
  const outbound = call.direction === 'outbound';
  const ringing = outbound && !call.answered_at;
  D.callPanel.classList.toggle('is-held', Boolean(call.held));
  D.callPanel.classList.toggle('is-muted', S.muted);
  D.callPanel.dataset.direction = outbound ? 'outbound' : 'inbound';
  setText(D.callStatusText, t(ringing ? 'agent.dial.ringing' : call.held ? 'agent.call.on_hold' : consult ? 'agent.call.consulting'
    : call.conference ? 'agent.call.conference' : outbound ? 'agent.dial.outbound' : 'agent.call.on_call'));
  setText(D.callQueue, outbound ? t('agent.dial.from', { number: call.caller_id || '' }) : call.queue || '');
  setText(D.callCaller, (outbound ? call.dialed : call.caller) || t('agent.caller.unknown'));
  show(D.holdBanner, Boolean(call.held));
  show(D.muteBanner, S.muted);
  const recordingPaused = Boolean(call.recording_paused);
  show(D.recordingBanner, recordingPaused);
  show(D.conferenceBanner, Boolean(call.conference));
  setText(D.conferenceText, !call.conference ? '' : consult
    ? t('agent.call.conference_with', { who: targetLabel(consult.target) }) : t('agent.call.conference_other'));

  setText(D.btnHold.querySelector('.btn-text'), t(call.held ? 'agent.call.resume' : 'agent.call.hold'));
  D.btnHold.querySelector('use').setAttribute('href', call.held ? '#i-play' : '#i-pause');
  D.btnHold.setAttribute('aria-pressed', String(Boolean(call.held)));
  setText(D.btnMute.querySelector('.btn-text'), t(S.muted ? 'agent.call.unmute' : 'agent.call.mute'));
  D.btnMute.querySelector('use').setAttribute('href', S.muted ? '#i-mic' : '#i-micoff');
  D.btnMute.setAttribute('aria-pressed', String(S.muted));

  show(D.btnRecording, Boolean(S.features.recording_pause));
  setText(D.btnRecording.querySelector('.btn-text'), t(recordingPaused ? 'agent.call.recording_resume' : 'agent.call.recording_pause'));
  D.btnRecording.setAttribute('aria-pressed', String(recordingPaused));

  D.btnTransfer.disabled = Boolean(consult) || Boolean(call.conference);

  show(D.consultPanel, Boolean(consult));
  if (consult) {
    const who = targetLabel(consult.target);
    const talking = consult.state === 'talking';
    setText(D.consultText, t(call.conference ? 'agent.consult.conference' : talking ? 'agent.consult.talking' : 'agent.consult.calling', { who }));
    D.consultPanel.dataset.state = consult.state || '';
    show(D.btnConference, !call.conference);
  }
  setText(D.dtmfSent, S.dtmfSent);

  if (D.callContext.dataset.callId !== String(call.call_id)) {
    D.callContext.dataset.callId = String(call.call_id);
    const ivr = contextOf(call.call_id);
    const has = Boolean(ivr && ((ivr.inputs && ivr.inputs.length) || (ivr.variables && Object.keys(ivr.variables).length)));
    show(D.callContext, has);
    if (has) renderIvr(ivr, D.callIvrInputs, D.callIvrVars);
  }
}

/** Clocks only: runs four times a second. */
function tick() {
  if (S.view !== 'app') return;
  const now = nowSec();
  const since = S.state && typeof S.state.since === 'number' ? S.state.since : S.stateAt;
  setText(D.stateTimer, clock(now - since));

  if (S.offer) {
    const waited = (Number(S.offer.waited) || 0) + (now - S.offerAt);
    setText(D.offerWaited, clock(waited));
    const expires = Number(S.offer.expires_at);
    if (expires) {
      const left = Math.max(0, expires - now);
      setText(D.offerCountdown, clock(Math.ceil(left)));
      const total = Math.max(1, expires - (S.offerFirstAt || S.offerAt));
      D.offerProgressBar.style.transform = `scaleX(${Math.min(1, left / total).toFixed(4)})`;
      D.offerCard.classList.toggle('is-urgent', left <= 5);
    } else {
      setText(D.offerCountdown, '—');
    }
  }
  if (S.call) {
    const answered = typeof S.call.answered_at === 'number' ? S.call.answered_at : S.callAt;
    setText(D.callTimer, clock(now - answered));
  }
  if (S.wrapups.length) renderWrapupTimer();

  const view = stateView();
  let title = t('agent.title.state', { state: view.label });
  if (view.key === 'ringing') title = t('agent.title.ringing', { caller: S.offer.caller || t('agent.caller.unknown') });
  else if (S.call) title = t('agent.title.call', { time: clock(now - (S.call.answered_at || S.callAt)) });
  if (document.title !== title) document.title = title;
}

// ----------------------------------------------------------------- keyboard

function onKeyDown(event) {
  if (S.view !== 'app' || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (isTypingTarget(event.target) || document.querySelector('dialog[open]')) return; // the call's or a chat's dialog
  const key = (event.key || '').toLowerCase();
  let handled = true;
  if (key === 'a' && !event.shiftKey && S.offer) accept();
  else if (key === 'd' && !event.shiftKey && S.offer) decline();
  else if (key === 'h' && event.shiftKey && S.call) toggleHold();
  else if (key === 'h' && !event.shiftKey && S.call) hangup();
  else if (key === 'm' && !event.shiftKey && S.call) toggleMute();
  else if (key === 'c' && !event.shiftKey && !D.dialCard.hidden) D.dialNumber.focus();
  else handled = false;
  if (handled) event.preventDefault();
}

// ----------------------------------------------------------------- wiring

function wire() {
  D.btnNotify.addEventListener('click', requestNotifications);
  D.btnAvailable.addEventListener('click', () => setState('available'));
  D.btnBreak.addEventListener('click', () => setState('break'));
  D.btnOffline.addEventListener('click', () => setState('offline'));
  D.btnAccept.addEventListener('click', accept);
  D.btnDecline.addEventListener('click', decline);
  D.btnHangup.addEventListener('click', hangup);
  D.btnHold.addEventListener('click', toggleHold);
  D.btnMute.addEventListener('click', toggleMute);
  D.btnRecording.addEventListener('click', toggleRecording);
  D.btnTransfer.addEventListener('click', openTransferDialog);
  D.btnTransferComplete.addEventListener('click', () => send({ type: 'transfer_complete' }));
  D.btnTransferCancel.addEventListener('click', () => send({ type: 'transfer_cancel' }));
  D.btnConference.addEventListener('click', () => send({ type: 'conference' }));
  D.keypad.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('[data-digit]') : null;
    if (button) sendDigit(button.dataset.digit);
  });
  D.transferKind.addEventListener('change', () => {
    show(D.transferError, false);
    fillTransferValues();
  });
  D.transferForm.addEventListener('submit', submitTransfer);
  D.transferClose.addEventListener('click', closeTransferDialog);
  D.wrapupForm.addEventListener('submit', saveWrapup);
  D.wrapupNotes.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) saveWrapup(event);
  });
  const keepDraft = () => {
    const w = S.wrapups[0];
    if (!w) return;
    w.notes = D.wrapupNotes.value;
    w.disposition = D.wrapupDisposition.value;
    show(D.wrapupError, false);
    saveWrapups();
  };
  D.wrapupNotes.addEventListener('input', keepDraft);
  D.wrapupDisposition.addEventListener('change', keepDraft);
  D.historyRefresh.addEventListener('click', refreshHistory);
  D.dialCard.addEventListener('submit', submitDial);
  D.dialPad.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('[data-dial]') : null;
    if (button) pressDialKey(button.dataset.dial);
  });
  D.dialNumber.addEventListener('input', () => show(D.dialError, false));
  D.btnPreviewNext.addEventListener('click', previewNext);
  D.btnPreviewCall.addEventListener('click', previewCall);
  D.btnPreviewSkip.addEventListener('click', previewSkip);
  D.history.addEventListener('click', dialFromList);
  D.voicemails.addEventListener('click', dialFromList);
  document.addEventListener('keydown', onKeyDown);
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape' && !D.toast.hidden && !D.transferDialog.open) hideToast(); });
  // Browsers start audio only after a user gesture: take the first one.
  const gesture = () => {
    unlockAudio();
    const audio = D.remoteAudio;
    if (audio.srcObject && audio.paused) audio.play().catch(() => {});
  };
  document.addEventListener('pointerdown', gesture, true);
  document.addEventListener('keydown', gesture, true);
  setInterval(tick, 250);
}

/** A language change: rebuild what render() keeps while unchanged (offer, context, wrap-up form, lists). */
function relabel() {
  D.offerCard.dataset.callId = '';
  D.callContext.dataset.callId = '';
  D.wrapupPanel.dataset.callId = '';
  D.previewContact.dataset.attemptId = '';
  fillBreakReasons();
  fillCallerIds();
  if (D.transferDialog.open) fillTransferValues();
  if (S.historyNote) renderHistoryMessage(...S.historyNote);
  else if (S.history.length) renderHistory(S.history);
  if (D.voicemails.childElementCount) renderVoicemails();
  chatDesk.relabel();
  render();
}

wire();
chatDesk.init({
  send,
  connected: () => Boolean(S.ws && S.ws.readyState === WebSocket.OPEN && S.welcomed),
  session: () => ({ me: S.agent && S.agent.username, dispositions: S.dispositions, targets: S.targets }),
  onChange: render,
});
onLanguageChange(relabel);
startPage({
  page: 'agent',
  roles: ['agent'],
  catalogues: ['agent'],
  onReady: () => { S.view = 'app'; render(); connect(); },
  onSignedOut: () => { S.view = 'login'; endSession(); },
  // Still within the click's user activation (Chrome keeps it a few seconds); otherwise the
  // "Enable notifications" button in the header asks on a click.
  onSignIn: () => { unlockAudio(); if (!navigator.userActivation || navigator.userActivation.isActive) requestNotifications(); },
  confirmSignOut: () => (!S.call && !chatDesk.busy())
    || window.confirm(t(S.call ? 'agent.logout.confirm' : 'agent.chat.logout_confirm')),
});
