"""Talk analytics of a two-channel recording: who spoke when, dead air, over-talk.

Each channel goes through the same energy VAD that drives live speech
recognition (:class:`asr.vad.Vad`), frame by frame (20 ms), so "speech" here
means what the IVR would also have taken for speech: line noise, G.711 idle
codes and clicks are not talk. A frame counts as speech from the first loud
frame of an utterance to its last voiced one; the VAD's hangover (the quiet
frames it waits through before ending an utterance) is not talk.

Only the part after ``start_s`` (when the agent answered) is counted: before
it the caller was in the IVR, and its prompts and silences would distort
every ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from asr.vad import FRAME_MS, Vad, VadEvent, frame_energy_dbfs

__all__ = ["TalkStats", "speech_segments", "talk_stats"]

_FRAME_S = FRAME_MS / 1000


@dataclass(frozen=True, slots=True)
class TalkStats:
    """Seconds (multiples of 20 ms) and ratios of the counted part of a recording.

    ``silence_ratio`` and ``overtalk_ratio`` are shares of ``duration_s`` (None
    when nothing was counted); ``agent_talk_ratio`` is the agent's share of
    all talk, agent / (agent + caller), None when nobody spoke.
    ``speech_segments`` maps "caller" / "agent" to (start, end) seconds from
    the recording's start, for the UI timeline.
    """

    duration_s: float
    caller_talk_s: float
    agent_talk_s: float
    silence_s: float
    overtalk_s: float
    silence_ratio: float | None
    overtalk_ratio: float | None
    agent_talk_ratio: float | None
    speech_segments: dict[str, list[tuple[float, float]]]

    def as_json(self) -> dict[str, Any]:
        """What the database keeps (``transcripts.analytics``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["speech_segments"] = {k: [list(seg) for seg in v] for k, v in self.speech_segments.items()}
        return values

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TalkStats:
        """Back from :meth:`as_json`; fields missing from an older or hand-made row count as
        unknown (ratios None, seconds 0)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                values[f.name] = data[f.name]
            elif f.name == "speech_segments":
                values[f.name] = {}
            else:
                values[f.name] = None if f.name.endswith("_ratio") else 0.0
        values["speech_segments"] = {k: [tuple(seg) for seg in v] for k, v in values["speech_segments"].items()}
        return cls(**values)


def _speech_frames(pcm: np.ndarray, samples_per_frame: int, n_frames: int) -> np.ndarray:
    """Per 20 ms frame: True where the VAD puts speech (first loud frame .. last voiced frame of each utterance)."""
    active = np.zeros(n_frames, dtype=bool)
    samples = np.zeros(n_frames * samples_per_frame, dtype="<i2")  # a shorter channel is silent at its end
    count = min(len(pcm), samples.size)
    samples[:count] = pcm[:count]
    frames = samples.reshape(n_frames, samples_per_frame)
    vad = Vad()
    start = 0
    for frame in frames:
        event = vad.process_energy(frame_energy_dbfs(frame.tobytes()))
        if event is VadEvent.START:
            assert vad.speech_start_frame is not None
            start = vad.speech_start_frame
        elif event is VadEvent.END:
            assert vad.last_loud_frame is not None
            active[start:vad.last_loud_frame + 1] = True
    if vad.in_speech and vad.last_loud_frame is not None:  # still talking when the recording ends
        active[start:vad.last_loud_frame + 1] = True
    return active


def speech_segments(pcm: np.ndarray, *, rate: int = 8000) -> list[tuple[float, float]]:
    """Where the VAD hears speech in one channel: (start, end) seconds, from the first loud to the last voiced frame."""
    samples_per_frame = rate * FRAME_MS // 1000
    n_frames = len(pcm) // samples_per_frame
    return _segments(_speech_frames(pcm, samples_per_frame, n_frames), 0)


def _segments(active: np.ndarray, first: int) -> list[tuple[float, float]]:
    """Runs of True in ``active[first:]`` as (start, end) seconds from frame 0."""
    padded = np.concatenate(([False], active[first:], [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(round((first + int(a)) * _FRAME_S, 2), round((first + int(b)) * _FRAME_S, 2))
            for a, b in zip(edges[::2], edges[1::2])]


def talk_stats(caller_pcm: np.ndarray, agent_pcm: np.ndarray, *, rate: int = 8000,
               start_s: float = 0.0) -> TalkStats:
    """Talk analytics of the two channels (16-bit PCM at ``rate``), counting from ``start_s`` seconds.

    The VAD runs over each whole channel (its noise floor needs the audio
    before ``start_s`` to be right at the moment the agent answers); only the
    frames from ``start_s`` on are counted. A shorter channel counts as silent
    where it has no samples.
    """
    samples_per_frame = rate * FRAME_MS // 1000
    n_frames = max(len(caller_pcm), len(agent_pcm)) // samples_per_frame
    first = min(n_frames, max(0, round(start_s / _FRAME_S)))
    caller = _speech_frames(caller_pcm, samples_per_frame, n_frames)
    agent = _speech_frames(agent_pcm, samples_per_frame, n_frames)
    c, a = caller[first:], agent[first:]
    counted = n_frames - first
    caller_frames, agent_frames = int(c.sum()), int(a.sum())
    both = int((c & a).sum())
    neither = counted - int((c | a).sum())
    talked = agent_frames + caller_frames

    def seconds(frames: int) -> float:
        return round(frames * _FRAME_S, 2)

    return TalkStats(
        duration_s=seconds(counted),
        caller_talk_s=seconds(caller_frames),
        agent_talk_s=seconds(agent_frames),
        silence_s=seconds(neither),
        overtalk_s=seconds(both),
        silence_ratio=round(neither / counted, 4) if counted else None,
        overtalk_ratio=round(both / counted, 4) if counted else None,
        agent_talk_ratio=round(agent_frames / talked, 4) if talked else None,
        speech_segments={"caller": _segments(caller, first), "agent": _segments(agent, first)},
    )
