"""The time-to-human benchmark still replays a handoff in both transfer modes and reports each (no speed is
asserted: the figures are the harness's simulated agent timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.time_to_human import main

SCENARIO = Path(__file__).resolve().parents[2] / "audio_fixtures" / "scenarios" / "talk_to_a_person.yaml"


def test_one_handoff_is_measured_in_both_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--scenario", str(SCENARIO), "--tts-cache", str(tmp_path / "tts")]) == 0
    out = capsys.readouterr().out
    assert "median dial:" in out and "median conference:" in out
