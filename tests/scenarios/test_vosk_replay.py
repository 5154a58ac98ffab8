"""The person scenario replayed with real vosk recognition instead of oracle ASR (needs a model on disk)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from telephony.server.settings import Settings
from tests.scenarios.conftest import load, replay, timeline
from voice.errors import ModelNotFound
from voice.models import DEFAULT_CACHE_DIR, DEFAULT_MODEL_NAME, MODEL_PATH_ENV, locate_model


@pytest.fixture(scope="module")
def model_path() -> Path:
    explicit = os.environ.get(MODEL_PATH_ENV)
    try:
        return locate_model(Path(explicit) if explicit else None, DEFAULT_CACHE_DIR, DEFAULT_MODEL_NAME)
    except ModelNotFound as exc:
        pytest.skip(str(exc))


@pytest.mark.vosk
async def test_a_caller_asking_for_a_person_is_recognised_by_vosk_and_transferred(
    model_path: Path, settings: Settings
) -> None:
    vosk_settings = settings.model_copy(update={"vosk_model_path": model_path})
    result = await replay(load("talk_to_a_person.yaml"), vosk_settings, asr="vosk")
    assert result.asr == "vosk"
    assert result.outcome.get("kind") == "transfer", timeline(result)
    caller = [t for t in result.transcript if t["speaker"] == "caller"]
    assert caller and "person" in caller[0]["text"]
