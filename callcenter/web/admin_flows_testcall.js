// The test call panel of the flow editor: the admin's browser calls the version being edited (saved
// as a version first if the draft has changed) through the node's real IVR, over WebRTC like the
// softphone (/static/webrtc.js). One WebSocket per call, /api/flows/<name>/test-call?version=N
// (README "Test calls"): welcome {ice_servers} → rtc_offer → rtc_answer {call_id}, then trace
// {trace} as the call moves through the flow (highlighted on the graph) and ended {result}; the
// keypad sends dtmf {digits}, the hang-up button hangup. Closing the socket ends the call.

import { showError } from '/static/shell.js';
import { MIC_CONSTRAINTS, iceGatheringComplete, preferCodecs } from '/static/webrtc.js';
import { h, t, button, retranslate } from '/static/admin_flows_util.js';

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];
const ICE_GATHER_CAP_MS = 2000;
/** Why the node closed the socket before the call (close code → catalogue key). */
const CLOSED = { 4403: 'flows.testcall.not_allowed', 4404: 'flows.testcall.not_found',
  4409: 'flows.testcall.replaced', 4429: 'flows.testcall.refused' };

/** The panel; ctx: {name(), version() (saved version or null), save() → version or null, showPath(path)}. */
export function testCallPanel(ctx) {
  const audio = h('audio', { id: 'testcall-audio', autoplay: true });
  const status = h('p', { id: 'testcall-status', className: 'muted', role: 'status' });
  const result = h('p', { id: 'testcall-result', className: 'sim-result' });
  const startButton = button(t('flows.testcall.start'), () => start(), 'btn btn-primary',
    { id: 'testcall-start', 'data-t': 'flows.testcall.start' });
  const hangupButton = button(t('flows.testcall.hangup'), () => send({ type: 'hangup' }), 'btn btn-outline-danger',
    { id: 'testcall-hangup', 'data-t': 'flows.testcall.hangup', disabled: true });
  const keypad = h('div', { id: 'testcall-keypad', className: 'testcall-keypad', role: 'group',
    'aria-label': t('flows.testcall.keypad') },
  KEYS.map((key) => button(key, () => send({ type: 'dtmf', digits: key }), 'btn btn-secondary',
    { 'data-key': key, disabled: true })));
  let call = null;  // {ws, pc, mic, state: 'connecting'|'in_call'|'ended', node, result}

  function send(message) {
    if (call && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(message));
  }

  async function start() {
    if (call && call.state !== 'ended') return;
    const version = ctx.version() || await ctx.save();
    if (!version) return;  // the draft has errors: save() said so
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/api/flows/${encodeURIComponent(ctx.name())}/test-call?version=${version}`);
    call = { ws, pc: null, mic: null, state: 'connecting', node: null, result: null, version };
    result.textContent = '';
    ctx.showPath([]);
    const mine = call;
    ws.addEventListener('message', (event) => onMessage(mine, JSON.parse(event.data)).catch((err) => {
      showError(err);
      ws.close();
    }));
    ws.addEventListener('close', (event) => {
      if (mine.state === 'connecting' && CLOSED[event.code]) showError(t(CLOSED[event.code]));
      finish(mine);
    });
    render();
  }

  async function onMessage(mine, message) {
    if (mine !== call) return;
    if (message.type === 'welcome') {
      await connectAudio(mine, message.ice_servers || []);
    } else if (message.type === 'rtc_answer') {
      await mine.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
      mine.state = 'in_call';
      mine.callId = message.call_id;
    } else if (message.type === 'trace' || message.type === 'ended') {
      const steps = message.trace.steps;
      mine.node = steps.length ? steps[steps.length - 1].node : null;
      mine.result = message.trace.result;
      ctx.showPath(steps.map((step) => step.node));
      if (message.type === 'ended') mine.state = 'ended';
    } else if (message.type === 'error') {  // worded from its error_id; the English message for the rest
      showError(message.error_id ? t(`flows.testcall.error.${message.error_id}`, { message: message.message || '' })
        : message.message);
    }
    render();
  }

  async function connectAudio(mine, iceServers) {
    try {
      mine.mic = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
    } catch (_) {
      mine.mic = null;  // no microphone: the admin still hears the prompts and has the keypad
    }
    const pc = mine.pc = new RTCPeerConnection({ iceServers });
    pc.ontrack = (event) => {
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      audio.play().catch(() => { /* autoplay refused: the next click plays it */ });
    };
    const track = mine.mic && mine.mic.getAudioTracks()[0];
    const sender = track ? pc.addTrack(track, mine.mic) : null;
    const transceiver = sender ? pc.getTransceivers().find((tr) => tr.sender === sender)
      : pc.addTransceiver('audio', { direction: 'sendrecv' });
    preferCodecs(transceiver);
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc, ICE_GATHER_CAP_MS);
    if (mine === call) send({ type: 'rtc_offer', sdp: pc.localDescription.sdp });
  }

  function finish(mine) {
    mine.state = 'ended';
    if (mine.pc) mine.pc.close();
    if (mine.mic) mine.mic.getTracks().forEach((track) => track.stop());
    if (mine === call) render();
  }

  function resultText(text) {
    if (!text) return t('flows.testcall.result_ended');
    const [kind, rest] = text.split(/:\s*/, 2);
    const key = { queue: 'result_queue', transfer: 'result_transfer', hangup: 'result_hangup',
      'caller hung up': 'result_caller', error: 'result_error' }[kind] || 'result_ended';
    return t(`flows.testcall.${key}`, { queue: rest || '', number: rest || '' });
  }

  function render() {
    const live = call && call.state !== 'ended';
    startButton.disabled = Boolean(live);
    hangupButton.disabled = !live;
    for (const key of keypad.querySelectorAll('button')) key.disabled = !(call && call.state === 'in_call');
    keypad.setAttribute('aria-label', t('flows.testcall.keypad'));
    if (!call) { status.textContent = t('flows.testcall.idle'); result.textContent = ''; return; }
    status.textContent = call.state === 'connecting' ? t('flows.testcall.connecting', { version: call.version })
      : call.state === 'in_call' ? t('flows.testcall.in_call', { version: call.version, node: call.node || '—' })
        : t('flows.testcall.ended');
    result.textContent = call.state === 'ended' ? resultText(call.result) : '';
  }

  const element = h('section', { className: 'flows-card testcall-panel', 'aria-labelledby': 'testcall-title' },
    h('h3', { id: 'testcall-title', 'data-t': 'flows.testcall.title', text: t('flows.testcall.title') }),
    h('p', { className: 'muted sim-hint', 'data-t': 'flows.testcall.hint', text: t('flows.testcall.hint') }),
    h('div', { className: 'testcall-buttons' }, startButton, hangupButton),
    keypad, status, result, audio);
  render();

  return {
    element,
    render() { retranslate(element); render(); },
    /** Another flow was opened: a call in progress ends. */
    reset() { if (call && call.state !== 'ended') call.ws.close(); call = null; render(); },
  };
}
