"""The vosk capacity benchmark still runs both paths on real vosk (one caller, a few seconds; no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.asr_capacity import main

pytestmark = [pytest.mark.vosk, pytest.mark.language("ko")]


def test_both_paths_recognise_every_utterance_of_a_caller_and_report_a_capacity(
    korean_model_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "capacity.json"
    argv = ["--model", str(korean_model_path), "--callers", "1", "--patterns", "non-stop", "--seconds", "5"]

    assert main([*argv, "--cold", "--json", str(out)]) == 0

    report = json.loads(out.read_text())
    points = {point["path"]: point for point in report["points"]}
    assert set(points) == {"project", "bare"}
    for point in points.values():
        assert point["expected_finals"] >= 2  # the non-stop caller says several sentences in 5 s
        assert point["finals"] == point["expected_finals"] and point["failures"] == 0
        assert point["cpu_s"] > 0
    assert set(report["capacity"]["non-stop"]) == {"project", "bare"}
