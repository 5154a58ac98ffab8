"""Every scenario in audio_fixtures/scenarios replays through the real call path and meets its `expect` block."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.replay.scenario import load_scenario
from telephony.server.settings import Settings
from tests.scenarios.conftest import load, replay, scenario_files, timeline


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.stem)
async def test_scenario_meets_its_expectations(path: Path, settings: Settings) -> None:
    scenario = load_scenario(path)
    result = await replay(scenario, settings)
    assert result.checks, f"{path.name} checks nothing"
    assert result.passed, timeline(result)


async def test_a_call_asking_for_a_person_is_transferred_with_the_callers_words_whispered(settings: Settings) -> None:
    result = await replay(load("talk_to_a_person.yaml"), settings)
    assert result.outcome["kind"] == "transfer"
    assert result.outcome["target"] == "+15005550002"  # the orders queue's first target
    assert "talk to a real person" in result.outcome["whisper"].lower()
    assert result.handoff is not None and "real person" in result.handoff["primary_issue"]
    caller = [t for t in result.transcript if t["speaker"] == "caller"]
    assert caller and caller[0]["confidence"] == pytest.approx(0.95)
    assert all(not p["cut_off"] for p in result.prompts)
    assert result.bot_audio_wav is None  # no out_dir given, no WAV written


async def test_the_replay_writes_the_bot_audio_the_caller_heard(settings: Settings, tmp_path: Path) -> None:
    from voice.wavfile import read_ulaw_wav

    result = await replay(load("talk_to_a_person.yaml"), settings, out_dir=tmp_path)
    assert result.bot_audio_wav is not None
    heard = read_ulaw_wav(Path(result.bot_audio_wav))
    spoken_ms = sum(p["duration_ms"] for p in result.prompts)
    assert len(heard) // 8 >= spoken_ms  # the whole call's timeline, bot speech included
    assert sum(1 for b in heard if b != 0xFF) > spoken_ms  # not silence: the prompts are in it


async def test_a_failing_expectation_is_reported_with_what_was_seen(settings: Settings) -> None:
    scenario = load("talk_to_a_person.yaml")
    wrong = scenario.model_copy(update={"expect": scenario.expect.model_copy(update={"outcome": "hangup"})})
    result = await replay(wrong, settings)
    assert result.passed is False
    (failed,) = [c for c in result.checks if not c["ok"]]
    assert failed["name"] == "outcome" and failed["actual"] == "transfer"
