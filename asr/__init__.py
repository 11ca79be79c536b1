"""Local streaming speech recognition with vosk: VAD, grammar menus and free speech.

    engine = SpeechEngine(model_path)        # or bundled_model_path(); None disables ASR
    await engine.start()                     # loads the model in the engine's worker pool
    session = engine.session(["판매", "상담"], call_id=call.id, on_speech_start=playback.stop)
    async for frame in call.audio():
        session.feed(frame)                  # VAD on the loop, decoding in a worker
    result = await session.result(timeout=10)   # Recognition | None
    session.close(); engine.close()
"""

from .engine import DISABLED_WARNING, SpeechEngine
from .errors import AsrError
from .matching import match_phrase, normalize_phrase
from .models import bundled_model_path, load_model, usable_phrases
from .recognition import Recognition, Word
from .session import SpeechSession
from .stats import AsrStats, asr_stats
from .vad import FRAME_BYTES, Vad, VadConfig, VadEvent, frame_energy_dbfs

__all__ = [
    "DISABLED_WARNING",
    "FRAME_BYTES",
    "AsrError",
    "AsrStats",
    "Recognition",
    "SpeechEngine",
    "SpeechSession",
    "Vad",
    "VadConfig",
    "VadEvent",
    "Word",
    "asr_stats",
    "bundled_model_path",
    "frame_energy_dbfs",
    "load_model",
    "match_phrase",
    "normalize_phrase",
    "usable_phrases",
]
