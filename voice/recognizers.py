"""Which recogniser a server uses: vosk with a model on disk, or oracle ASR for tests and replays."""

from __future__ import annotations

from pathlib import Path

from voice.models import locate_model
from voice.oracle import OracleRecognizerFactory
from voice.stt import RecognizerFactory, VoskRecognizerFactory


def build_recognizer_factory(kind: str, model_path: Path | None, cache_dir: Path, model_name: str) -> RecognizerFactory:
    """The factory the settings ask for: "vosk" (raises ModelNotFound without a model) or "oracle"."""
    if kind == "vosk":
        return VoskRecognizerFactory(locate_model(model_path, cache_dir, model_name))
    if kind == "oracle":
        return OracleRecognizerFactory()
    raise ValueError(f"unknown recogniser kind {kind!r}; expected 'vosk' or 'oracle'")
