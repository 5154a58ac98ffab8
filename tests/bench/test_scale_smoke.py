"""The scale benchmark still runs end to end: one and two `handoff serve` processes on PostgreSQL behind nginx,
two short calls each, every call carried and every process measured (nothing about speed is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.scale import main
from tests.cluster.harness import require_nginx


def test_one_and_two_processes_carry_two_calls_behind_nginx(postgres_url: str, tmp_path: Path) -> None:
    require_nginx()
    out = tmp_path / "scale.json"
    code = main(["--processes", "1,2", "--calls", "2", "--turns", "1", "--ramp", "0", "--database-url", postgres_url,
                 "--tts-cache", str(tmp_path / "tts"), "--json", str(out)])  # fmt: skip
    assert code == 0
    sizes = json.loads(out.read_text())["sizes"]
    assert [s["processes"] for s in sizes] == [1, 2]
    for size in sizes:
        (point,) = size["points"]
        assert point["lost_calls"] == 0 and point["reply_ms_client"]["n"] == 2
        assert len(point["per_process_cores"]) == size["processes"]
