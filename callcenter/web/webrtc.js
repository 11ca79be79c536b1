// What the agent softphone (/agent) and the supervisor's wallboard (/supervisor) share of WebRTC:
// the microphone's constraints, G.711 first (the node relays it untouched), and waiting for ICE
// candidates so that one offer carries them all (the node does not trickle).

const CODEC_RANK = { 'audio/pcmu': 0, 'audio/pcma': 1, 'audio/opus': 2 };
export const MIC_CONSTRAINTS = { audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } };

export function preferCodecs(transceiver) {
  if (!transceiver || typeof transceiver.setCodecPreferences !== 'function') return;
  const caps = (window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities('audio'))
    || (window.RTCRtpSender && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities('audio'));
  if (!caps || !Array.isArray(caps.codecs)) return;
  const rank = (codec) => CODEC_RANK[String(codec.mimeType).toLowerCase()] ?? 3;
  const codecs = caps.codecs
    .map((codec, index) => ({ codec, index }))
    .sort((a, b) => rank(a.codec) - rank(b.codec) || a.index - b.index)
    .map((entry) => entry.codec);
  try {
    transceiver.setCodecPreferences(codecs);
  } catch (_) {
    // Browser default order then; the server still picks G.711 when offered.
  }
}

export function iceGatheringComplete(pc, capMs) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return; }
    let timer = null;
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      pc.removeEventListener('icecandidate', onCandidate);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const onCandidate = (event) => { if (!event.candidate) done(); };
    timer = setTimeout(done, capMs);
    pc.addEventListener('icegatheringstatechange', check);
    pc.addEventListener('icecandidate', onCandidate);
  });
}
