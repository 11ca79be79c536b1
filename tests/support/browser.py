"""Debian's Chromium, headless, driven by Playwright; a known tone as its microphone.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``. The fake
media flags give the page a microphone that plays a WAV file in a loop and grant the
permission prompt; the background-networking flags keep Chromium from calling home
(the machine's closed network refuses those connections).
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

from sip_bridge.tones import sine

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]


def tone_wav(path: Path, freq: float, seconds: float = 10.0) -> Path:
    """A 16-bit 8 kHz mono WAV of one sine: what the fake microphone says."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(sine(freq, seconds, amplitude=0.3))
    return path


@asynccontextmanager
async def chromium(microphone: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=[*FLAGS, f"--use-file-for-fake-audio-capture={microphone}"])
        try:
            yield browser
        finally:
            await browser.close()


HEARS_TONE_JS = """
async ([freq, ms, selector, among]) => {
  // The remote audio through an analyser: is the loudest bin the tone's, and loud? (among: is
  // there a clear peak at the tone, as one of several voices mixed; an absent tone's bin is
  // near -100 dB, a voice through the other page's noise suppression may be 20 dB below another)
  const audio = document.querySelector(selector);
  if (!audio || !audio.srcObject) return {ok: false, why: 'no remote audio'};
  const ctx = window.__toneCtx || (window.__toneCtx = new AudioContext());
  await ctx.resume();
  const taps = window.__toneTaps || (window.__toneTaps = {});
  if (!taps[selector] || taps[selector].stream !== audio.srcObject) {
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 4096;
    analyser.smoothingTimeConstant = 0;  // each look sees only its own 85 ms
    ctx.createMediaStreamSource(audio.srcObject).connect(analyser);
    taps[selector] = {stream: audio.srcObject, analyser};
  }
  const analyser = taps[selector].analyser;
  const bins = new Float32Array(analyser.frequencyBinCount);
  const width = ctx.sampleRate / analyser.fftSize;
  let hits = 0, looks = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await new Promise(r => setTimeout(r, 50));
    analyser.getFloatFrequencyData(bins);
    let best = 0;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    looks++;
    const at = Math.round(freq / width);
    const level = Math.max(bins[at - 1], bins[at], bins[at + 1]);
    const around = Math.max(bins[at - 6], bins[at + 6]);
    if (among ? level > -70 && level > around + 10
              : Math.abs(best * width - freq) <= 2 * width && bins[best] > -60) hits++;
  }
  return {ok: hits >= looks / 2, hits, looks};
}
"""


async def log_in(page: Page, url: str, username: str, password: str, tenant: str = "demo") -> None:
    """Open one of the node's pages (``/agent``, ``/qa``, ``/supervisor``) and sign in on its login form."""
    await page.goto(url)
    await page.fill("#login-tenant", tenant)
    await page.fill("#login-username", username)
    await page.fill("#login-password", password)
    await page.click("#login-submit")


async def until(page: Page, expression: str, timeout: float = 15.0) -> None:
    """Wait until a JavaScript expression is true in the page. Unlike Playwright's
    ``wait_for_function``, which evaluates its predicate with ``eval`` and so is refused by the
    pages' Content-Security-Policy (no 'unsafe-eval'), this polls through DevTools."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await page.evaluate(f"() => Boolean({expression})"):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"not true within {timeout} s: {expression}")
        await asyncio.sleep(0.1)


async def hears_tone(page: Page, freq: float, ms: int = 1000, *, audio: str = "#remote-audio",
                     among: bool = False) -> bool:
    """Whether the page's remote audio (the element ``audio``) is mostly ``freq`` for ``ms``
    milliseconds, or with ``among`` carries ``freq`` as one of several tones mixed."""
    result = await page.evaluate(HEARS_TONE_JS, [freq, ms, audio, among])
    return bool(result["ok"])
