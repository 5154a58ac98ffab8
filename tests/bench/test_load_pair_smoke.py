"""The paired load benchmark still runs two builds at once and compares them: one pair of two short calls each,
this checkout against itself (nothing about speed is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.load_pair import REPO_ROOT, main


def test_one_pair_runs_both_builds_and_reports_the_ratio_of_their_cpu(tmp_path: Path) -> None:
    out = tmp_path / "pair.json"
    code = main(["--before", str(REPO_ROOT), "--pairs", "1", "--server-cpus", "", "--client-cpus", "",
                 "--json", str(out), "--calls", "2", "--turns", "1", "--ramp", "0", "--no-warm",
                 "--tts-cache", str(tmp_path / "tts")])  # fmt: skip
    assert code == 0
    (pair,) = json.loads(out.read_text())["pairs"]
    assert pair["before"]["lost_calls"] == 0 and pair["after"]["lost_calls"] == 0
    assert pair["cpu_ratio"] == round(pair["after"]["server_cpu_s"] / pair["before"]["server_cpu_s"], 3)
