"""Answering-machine detection benchmark: accuracy, decision time and CPU per frame.

Calls (all generated, seeded): espeak-ng at 8 kHz, fed in 20 ms frames to
campaigns.amd.MachineDetector the way the campaign runner does, then to GreetingEnd
after a "machine" verdict.

* persons: a short greeting ("喂？", "你好，哪位？", "hello?", "hello, who is this?", ...) in
  several voices and speeds, 0.3-1.2 s after the answer, then silence (waiting for an answer);
* machines: voicemail and operator greetings of 5-20 s, Mandarin and English, half of them
  ending in a beep (400-1400 Hz, 0.2-0.8 s), then silence;
  Harder ones: persons saying it twice ("hello? ... hello?", 0.4-0.7 s apart), and machines
  pausing 0.4-0.7 s after a first "Hello." / "您好。";
* line conditions: clean, line noise (-50 and -42 dBFS), G.711 round trips (PCMA, PCMU), a quiet
  talker (-12 dB), noise that starts 0.5 s into the call, and DTX (frames below -40 dBFS never
  sent: zeros); every call begins with 0.2 s of zeros (no packet yet: the runner feeds silence
  frames).

The caller's deadline is --deadline seconds after the answer (then MachineDetector.timeout()).
Reported: the confusion table, accuracy, decision time p50/p95 per class (from the answer, and
for persons from the end of their greeting: how long a person hears silence), CPU per
20 ms frame (MachineDetector, and GreetingEnd), and for machines where GreetingEnd fired
relative to the end of the greeting or beep.

usage: python bench/amd_bench.py [--deadline 5] [--seed 15]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from campaigns.amd import (
    FRAME_BYTES,
    FRAME_MS,
    SAMPLE_RATE,
    GreetingEnd,
    MachineDetector,
)
from tests.support.audio import (
    g711_round_trip,
    noise,
    silence,
    speak,
    speech_end_seconds,
    tone,
    tools_missing,
    trim,
)

PERSON_TEXTS = {
    "cmn": ["喂？", "喂，你好？", "你好，哪位？", "哪位？", "喂，您好"],
    "en": ["hello?", "hello, who is this?", "yes?", "hi, who's calling?", "hello, John speaking"],
}
MACHINE_TEXTS = {
    "cmn": [
        "您好，您拨打的用户暂时无法接通，请在提示音后留言。",
        "您好，我现在不方便接听电话，请在听到提示音后留下您的姓名和电话号码，我会尽快给您回电，谢谢。",
        "你好，这里是王明的语音信箱。我现在无法接听您的电话，请在嘀声之后留言，我会尽快回复您。",
    ],
    "en": [
        ("Hi, you have reached John Smith. I can't come to the phone right now. Please leave a message after "
         "the tone."),
        ("Hello, you have reached the voicemail of Sarah Miller. I am not available to take your call right "
         "now. Please leave your name, number and a short message after the beep, and I will get back to you."),
        ("Thank you for calling Acme Dental. Our office is currently closed. Our opening hours are Monday "
         "to Friday, nine to five. Please leave a message with your name and phone number after the tone "
         "and we will return your call on the next business day. Goodbye."),
    ],
}
VOICES = {"cmn": ["cmn", "cmn+f3"], "en": ["en-us", "en-gb", "en-us+f2"]}
PERSON_SPEEDS = (140, 165, 190)
MACHINE_SPEEDS = (150, 175)
# persons who say it twice ("hello? ... hello?"), machines that pause after their first words
REPEATED = {"喂？", "hello?"}
FIRST_WORDS = {"cmn": "您好。", "en": "Hello."}
CONDITIONS = ("clean", "noise -50", "noise -42", "PCMA", "PCMU + noise -50", "quiet PCMA + noise -50",
              "PCMA + noise -45 late", "DTX")
LATE_NOISE_S = 0.5
DTX_DBFS = -40.0  # DTX: frames quieter than this are not sent
QUIET_DB = -12.0  # a quiet line: speech ~-32 dBFS
FRAME_S = FRAME_MS / 1000


ONE_WORD = {"喂？", "哪位？", "hello?", "yes?"}


@dataclass
class Call:
    truth: str  # "person" | "machine"
    label: str
    one_word: bool  # a person saying just "喂？" / "hello?" (once)
    pcm: bytes
    speech_end: float  # seconds from the answer: end of the greeting
    beep_end: float | None  # seconds from the answer, machines with a beep


def _frames_exact(pcm: bytes) -> bytes:
    return pcm[:len(pcm) - len(pcm) % FRAME_BYTES]


def line(pcm: bytes, condition: str, seed: int) -> bytes:
    """``pcm`` as received on a line in ``condition`` (same length), decoded as the runner feeds it."""
    if condition.startswith("quiet"):
        pcm = (_as_int(pcm) * 10 ** (QUIET_DB / 20)).round().astype("<i2").tobytes()
    if "noise" in condition:
        dbfs = float(condition.split("noise ", 1)[1].split()[0])
        hiss = noise(len(pcm) / 2 / SAMPLE_RATE + 0.01, dbfs=dbfs, seed=seed)[:len(pcm)]
        if "late" in condition:  # a quiet line, then noise (the phone taken outside, a fan switched on)
            hiss = bytes(len(silence(LATE_NOISE_S))) + hiss[len(silence(LATE_NOISE_S)):]
        pcm = (_as_int(pcm) + _as_int(hiss)).clip(-32768, 32767).astype("<i2").tobytes()
    if "PCM" in condition:
        pcm = g711_round_trip(pcm, "PCMU" if "PCMU" in condition else "PCMA")
    if condition == "DTX":  # the phone sends no packets while its own VAD hears nothing: zeros
        pcm = _without_quiet_frames(pcm)
    # no packet yet for the first 0.2 s: the runner feeds zeros
    no_packets = len(silence(0.2))
    return bytes(no_packets) + pcm[no_packets:]


def _without_quiet_frames(pcm: bytes) -> bytes:
    x = _as_int(pcm[:len(pcm) - len(pcm) % FRAME_BYTES]).reshape(-1, FRAME_BYTES // 2)
    power = (x.astype(np.float64) ** 2).mean(axis=1) / 32768.0 ** 2
    x[10 * np.log10(power + 1e-12) < DTX_DBFS] = 0
    return x.astype("<i2").tobytes() + pcm[len(pcm) - len(pcm) % FRAME_BYTES:]


def _as_int(pcm: bytes) -> npt.NDArray[np.int32]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def build_calls(seed: int) -> list[Call]:
    rng = random.Random(seed)
    calls: list[Call] = []
    for lang, texts in PERSON_TEXTS.items():
        for text in texts:
            for voice in VOICES[lang]:
                for speed in PERSON_SPEEDS:
                    lead = rng.uniform(0.3, 1.2)
                    said = speak(text, voice=voice, speed=speed)
                    label = f"{voice} {speed} {text}"
                    if text in REPEATED and speed != PERSON_SPEEDS[0]:
                        pause = rng.uniform(0.4, 0.7)
                        said = trim(said) + silence(pause) + trim(said) + silence(0.3)
                        label += f" ({pause:.1f} s) {text}"
                    end = lead + speech_end_seconds(said)
                    pcm = silence(lead) + said + silence(6.0)
                    one_word = text in ONE_WORD and "(" not in label
                    calls.extend(_conditions("person", label, one_word, pcm, end, None, rng))
    for lang, texts in MACHINE_TEXTS.items():
        for text in texts:
            for voice in VOICES[lang]:
                for speed in MACHINE_SPEEDS:
                    lead = rng.uniform(0.2, 0.8)
                    said = speak(text, voice=voice, speed=speed)
                    label = f"{voice} {speed} {text[:16]}…"
                    if speed == MACHINE_SPEEDS[0]:
                        pause = rng.uniform(0.4, 0.7)
                        said = trim(speak(FIRST_WORDS[lang], voice=voice, speed=speed)) + silence(pause) + trim(said)
                        label = f"{FIRST_WORDS[lang]} ({pause:.1f} s) {label}"
                    end = lead + speech_end_seconds(said)
                    pcm = silence(lead) + said
                    beep_end = None
                    if rng.random() < 0.5:
                        pcm += silence(rng.uniform(0.2, 0.6))
                        beep = tone(rng.uniform(0.2, 0.8), freq=rng.choice((400, 700, 1000, 1400)), dbfs=-18)
                        pcm += beep
                        beep_end = len(pcm) / 2 / SAMPLE_RATE
                    pcm += silence(4.0)
                    calls.extend(_conditions("machine", label, False, pcm, end, beep_end, rng))
    return calls


def _conditions(truth: str, label: str, one_word: bool, pcm: bytes, end: float, beep_end: float | None,
                rng: random.Random) -> list[Call]:
    return [Call(truth, f"{label} [{cond}]", one_word, _frames_exact(line(pcm, cond, rng.randrange(1 << 30))), end,
                 beep_end) for cond in CONDITIONS]


@dataclass
class Tally:
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    decided_at: dict[str, list[float]] = field(default_factory=lambda: {"person": [], "machine": [], "one word": []})
    after_greeting: list[float] = field(default_factory=list)  # persons: decision - end of their greeting
    message_after: dict[str, list[float]] = field(default_factory=lambda: {"beep": [], "no beep": []})
    early_messages: int = 0
    detector_cpu: float = 0.0
    detector_frames: int = 0
    waiter_cpu: float = 0.0
    waiter_frames: int = 0
    errors: list[str] = field(default_factory=list)


def run_call(call: Call, deadline_frames: int, tally: Tally) -> None:
    """Detect as the runner would (deadline, then timeout()), then wait for the greeting's end on machines."""
    frames = [call.pcm[i:i + FRAME_BYTES] for i in range(0, len(call.pcm), FRAME_BYTES)]
    detector = MachineDetector()
    result = None
    used = 0
    cpu = time.process_time()
    for frame in frames[:deadline_frames]:
        used += 1
        if (result := detector.feed(frame)) is not None:
            break
    if result is None:
        result = detector.timeout()
    tally.detector_cpu += time.process_time() - cpu
    tally.detector_frames += used

    tally.confusion[call.truth, result.verdict] += 1
    tally.reasons[call.truth, result.reason] += 1
    tally.decided_at[call.truth].append(result.seconds)
    if result.verdict != call.truth:
        tally.errors.append(f"{call.truth} as {result.verdict} ({result.reason}, {result.seconds:.2f} s): {call.label}")
    if call.truth == "person" and result.verdict == "person":
        tally.after_greeting.append(result.seconds - call.speech_end)
        if call.one_word:
            tally.decided_at["one word"].append(result.seconds)
    if call.truth != "machine" or result.verdict != "machine":
        return

    waiter = GreetingEnd()
    cpu = time.process_time()
    for frame in frames[used:]:
        if waiter.feed(frame):
            break
    tally.waiter_cpu += time.process_time() - cpu
    tally.waiter_frames += round(waiter.seconds / FRAME_S)
    starts = result.seconds + waiter.seconds
    target = call.beep_end if call.beep_end is not None else call.speech_end
    tally.message_after["beep" if call.beep_end is not None else "no beep"].append(starts - target)
    if starts < target:
        tally.early_messages += 1
        tally.errors.append(f"message started {target - starts:.2f} s early ({waiter.reason}): {call.label}")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(tally: Tally, show_errors: bool) -> None:
    c = tally.confusion
    persons = c["person", "person"] + c["person", "machine"]
    machines = c["machine", "person"] + c["machine", "machine"]
    print("\nconfusion (rows: truth, columns: verdict)")
    print(f"{'':10}{'person':>9}{'machine':>9}")
    for truth in ("person", "machine"):
        print(f"{truth:10}{c[truth, 'person']:>9}{c[truth, 'machine']:>9}")
    print(f"persons as machines: {c['person', 'machine']}/{persons} ({100 * c['person', 'machine'] / persons:.1f}%)"
          f"   machines as persons: {c['machine', 'person']}/{machines}"
          f" ({100 * c['machine', 'person'] / machines:.1f}%)")
    correct = c["person", "person"] + c["machine", "machine"]
    print(f"accuracy: {100 * correct / (persons + machines):.1f}% of {persons + machines}")
    print("reasons: " + ", ".join(f"{truth}->{reason}: {n}" for (truth, reason), n in sorted(tally.reasons.items())))

    print(f"\n{'decision time, seconds after the answer':40}{'p50':>6}{'p95':>7}{'max':>7}")
    rows = [("persons", tally.decided_at["person"]),
            ("persons saying one word (once)", tally.decided_at["one word"]),
            ("machines", tally.decided_at["machine"]),
            ("persons, after their greeting ended", tally.after_greeting)]
    for label, values in rows:
        print(f"  {label:38}{pct(values, .5):6.2f} {pct(values, .95):6.2f} {max(values):6.2f}")

    print("\nGreetingEnd on detected machines: message starts, seconds after the end of")
    for kind, label in (("beep", "the beep"), ("no beep", "the greeting (no beep)")):
        values = tally.message_after[kind]
        print(f"  {label:36}p50 {pct(values, .5):5.2f}  p95 {pct(values, .95):5.2f}  (n={len(values)})")
    print(f"  started before the greeting or beep ended: {tally.early_messages}")

    print("\nCPU per 20 ms frame (fed one frame per call, as the runner does)")
    per_frame = tally.detector_cpu / tally.detector_frames
    print(f"  MachineDetector {1e6 * per_frame:6.1f} µs  ({tally.detector_frames} frames;"
          f" {100 * per_frame / FRAME_S:.3f}% of a core per call under analysis)")
    print(f"  GreetingEnd     {1e6 * tally.waiter_cpu / max(1, tally.waiter_frames):6.1f} µs"
          f"  ({tally.waiter_frames} frames)")
    if show_errors and tally.errors:
        print("\nerrors:\n  " + "\n  ".join(tally.errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deadline", type=float, default=5.0, help="caller's deadline, seconds after the answer")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--show-errors", action="store_true", help="list every misclassified call")
    args = parser.parse_args()
    if why := tools_missing():
        sys.exit(f"amd bench: {why}")

    started = time.perf_counter()
    calls = build_calls(args.seed)
    persons = sum(call.truth == "person" for call in calls)
    print(f"{len(calls)} calls ({persons} persons, {len(calls) - persons} machines; {len(CONDITIONS)} line"
          f" conditions) built in {time.perf_counter() - started:.1f} s; caller's deadline {args.deadline:g} s")
    tally = Tally()
    for call in calls:
        run_call(call, round(args.deadline / FRAME_S), tally)
    report(tally, args.show_errors)


if __name__ == "__main__":
    main()
