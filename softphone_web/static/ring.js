// Ringing tone generated with WebAudio: no audio file.
//
// Two tones mixed (400 Hz + 450 Hz) in the familiar "double ring" cadence:
// 0.4 s on, 0.2 s off, 0.4 s on, 2 s off. Gain changes are scheduled on the
// audio clock a few cycles ahead, so the cadence stays steady even when the
// tab's timers are throttled.

const TONES = [400, 450];
const CADENCE = [[0, 0.4], [0.6, 1.0]]; // [on, off] offsets within a cycle (s)
const CYCLE = 3.0;                        // s
const LEVEL = 0.12;                       // per oscillator, before the master gain
const RAMP = 0.015;                       // s, avoids clicks
const AHEAD = 4;                          // cycles scheduled ahead

let sharedContext = null;

/** The page's AudioContext, created on demand. */
export function audioContext() {
  if (!sharedContext) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    sharedContext = new Ctx();
  }
  return sharedContext;
}

/** Call from a user gesture: lets the browser start audio later without one. */
export function unlockAudio() {
  const ctx = audioContext();
  if (ctx && ctx.state === 'suspended') ctx.resume().catch(() => {});
}

export class Ringer {
  constructor() {
    this.nodes = null;
    this.timer = null;
    this.scheduledUntil = 0;
  }

  get ringing() {
    return this.nodes !== null;
  }

  start() {
    if (this.nodes) return;
    const ctx = audioContext();
    if (!ctx) return;
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    const oscillators = TONES.map((freq) => {
      const osc = ctx.createOscillator();
      osc.type = 'sine';
      osc.frequency.value = freq;
      osc.connect(gain);
      osc.start();
      return osc;
    });
    this.nodes = { ctx, gain, oscillators };
    this.scheduledUntil = ctx.currentTime + 0.05;
    this.schedule();
    this.timer = setInterval(() => this.schedule(), 1000);
  }

  schedule() {
    if (!this.nodes) return;
    const { ctx, gain } = this.nodes;
    const horizon = ctx.currentTime + AHEAD * CYCLE;
    // If the context was suspended for a while, do not schedule in the past.
    if (this.scheduledUntil < ctx.currentTime) this.scheduledUntil = ctx.currentTime + 0.05;
    while (this.scheduledUntil < horizon) {
      const t0 = this.scheduledUntil;
      for (const [on, off] of CADENCE) {
        gain.gain.setValueAtTime(0, t0 + on);
        gain.gain.linearRampToValueAtTime(LEVEL * 2, t0 + on + RAMP);
        gain.gain.setValueAtTime(LEVEL * 2, t0 + off - RAMP);
        gain.gain.linearRampToValueAtTime(0, t0 + off);
      }
      this.scheduledUntil = t0 + CYCLE;
    }
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.nodes) return;
    const { ctx, gain, oscillators } = this.nodes;
    this.nodes = null;
    const now = ctx.currentTime;
    try {
      gain.gain.cancelScheduledValues(now);
      gain.gain.setValueAtTime(gain.gain.value, now);
      gain.gain.linearRampToValueAtTime(0, now + RAMP);
      for (const osc of oscillators) osc.stop(now + RAMP + 0.01);
    } catch (_) { /* context closed */ }
    setTimeout(() => {
      try { gain.disconnect(); } catch (_) { /* already */ }
    }, 100);
  }
}
