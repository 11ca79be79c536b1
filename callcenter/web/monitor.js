// Listen, whisper and barge from the wallboard (README "Supervisor protocol"). The WebRTC line
// is set up on the first use and kept while the socket lives; switching mode only tells the
// node who hears whom, so no audio drops. The bar at the top shows the call and the mode.

import { MIC_CONSTRAINTS, iceGatheringComplete, preferCodecs } from '/static/webrtc.js';
import { socketErrorText, t } from '/static/shell.js';

const ICE_GATHER_CAP_MS = 2000;
/** Why monitoring ended, as a message key (empty: nothing to say, the supervisor did it). */
const REASONS = {
  call_ended: 'supervisor.monitor.call_ended', transferred: 'supervisor.monitor.transferred', stopped: '',
  switched: '', supervisor_left: '',
};

export class Monitor {
  /** @param {(message: object) => void} send  sends on the wallboard's socket */
  constructor(send, elements) {
    this.send = send;
    this.el = elements;  // { bar, who, state, buttons: {listen, whisper, barge}, leave, audio, error }
    this.pc = null;
    this.mic = null;
    this.iceServers = [];
    this.current = null;  // { call_id, agent_id, mode, suspended }
    this.agentNames = new Map();
    for (const [mode, button] of Object.entries(this.el.buttons)) {
      button.addEventListener('click', () => { if (this.current) this.start(this.current.call_id, mode); });
    }
    this.el.leave.addEventListener('click', () => this.send({ type: 'monitor_stop' }));
    this.render();
  }

  /** A new socket: the node dropped the old line and ended any monitoring with it. */
  reset() {
    if (this.pc) this.pc.close();
    this.pc = null;
    this.current = null;
    this.render();
  }

  async start(callId, mode) {
    this.showError('');
    if (!this.pc) {
      try { await this.connectAudio(); } catch (error) {
        this.showError(t('supervisor.monitor.audio_unavailable', { why: (error && error.message) || error }));
        return;
      }
    }
    this.send({ type: 'monitor', call_id: callId, mode });
  }

  async connectAudio() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error(t('supervisor.monitor.https'));
    if (!this.mic || this.mic.readyState === 'ended') {
      const stream = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
      this.mic = stream.getAudioTracks()[0];
    }
    const pc = this.pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.ontrack = (event) => {
      this.el.audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      const playing = this.el.audio.play();
      if (playing && playing.catch) playing.catch(() => {});
    };
    const sender = pc.addTrack(this.mic, new MediaStream([this.mic]));
    preferCodecs(pc.getTransceivers().find((t) => t.sender === sender));
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc, ICE_GATHER_CAP_MS);
    this.send({ type: 'rtc_offer', sdp: pc.localDescription.sdp });
  }

  /** Messages of the socket other than snapshots; returns whether it was one of ours. */
  handle(message) {
    switch (message.type) {
      case 'hello': this.iceServers = message.ice_servers || []; return true;
      case 'rtc_answer':
        if (this.pc && this.pc.signalingState === 'have-local-offer') {
          this.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp }).catch((e) => this.showError(t('supervisor.monitor.audio_failed', { why: e.message || e })));
        }
        return true;
      case 'monitor': this.current = message; this.render(); return true;
      case 'monitor_ended':
        if (this.current && this.current.call_id === message.call_id) this.current = null;
        this.showError(message.reason in REASONS ? (REASONS[message.reason] && t(REASONS[message.reason])) : message.reason);
        this.render();
        return true;
      case 'error':
        if (['monitor', 'monitor_stop', 'rtc_offer'].includes(message.ref)) { this.showError(socketErrorText('supervisor', message)); return true; }
        return false;
      default: return false;
    }
  }

  /** The agents' names, for the bar (from each snapshot). */
  names(agents) {
    this.agentNames = new Map(agents.map((a) => [a.agent_id, a.username]));
    this.render();
  }

  showError(text) {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
    if (text) this.el.bar.hidden = false;
  }

  render() {
    const m = this.current;
    this.el.bar.hidden = !m && this.el.error.hidden;
    this.el.bar.dataset.mode = m ? m.mode : '';
    this.el.who.textContent = m ? t(`supervisor.monitor.mode_${m.mode}`, {
      agent: this.agentNames.get(m.agent_id) || t('supervisor.monitor.agent') }) : '';
    this.el.state.textContent = m && m.suspended ? t('supervisor.monitor.suspended') : '';
    for (const [mode, button] of Object.entries(this.el.buttons)) {
      button.hidden = !m;
      button.setAttribute('aria-pressed', String(!!m && m.mode === mode));
    }
    this.el.leave.hidden = !m;
  }

  /** The call id the supervisor is on, if any (the agents' table marks it). */
  get callId() { return this.current ? this.current.call_id : null; }
}
