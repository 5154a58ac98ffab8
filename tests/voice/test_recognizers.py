"""Choosing a recogniser from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice.errors import ModelNotFound
from voice.models import DEFAULT_MODEL_NAME
from voice.oracle import OracleRecognizerFactory
from voice.recognizers import build_recognizer_factory

# --- building a factory -----------------------------------------------------------------------------


def test_build_oracle_factory(tmp_path: Path) -> None:
    factory = build_recognizer_factory("oracle", None, tmp_path, DEFAULT_MODEL_NAME)
    assert isinstance(factory, OracleRecognizerFactory)
    assert factory.name == "oracle"


def test_build_vosk_factory_without_a_model_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as caught:
        build_recognizer_factory("vosk", None, tmp_path / "models", DEFAULT_MODEL_NAME)
    message = str(caught.value)
    assert "`handoff models fetch`" in message
    assert message.endswith(".") and ". " not in message and "\n" not in message  # one sentence


def test_build_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'whisper'"):
        build_recognizer_factory("whisper", None, tmp_path, DEFAULT_MODEL_NAME)
