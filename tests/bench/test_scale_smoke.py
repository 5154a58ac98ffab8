"""The scale benchmark still runs end to end: one and two `handoff serve` processes on PostgreSQL behind nginx,
two short calls each, and one pinned process recognising two Korean calls with real vosk: every call carried and every
process measured, its recognition worker included (nothing about speed is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.scale import main
from tests.cluster.harness import require_nginx


@pytest.mark.timeout(300)  # two sizes, each a cluster started cold with its prompts synthesised: about 118 s here
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


@pytest.mark.vosk
@pytest.mark.language("ko")
def test_one_pinned_process_with_real_vosk_carries_two_korean_calls(
    postgres_url: str, korean_model_path: Path, tmp_path: Path
) -> None:
    require_nginx()
    out = tmp_path / "scale.json"
    code = main(["--asr", "vosk", "--free-form", "--pin", "--model", str(korean_model_path), "--processes", "1",
                 "--calls", "2", "--turns", "2", "--ramp", "0", "--database-url", postgres_url,
                 "--tts-cache", str(tmp_path / "tts"), "--json", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["asr"] == "vosk" and result["target_p95_ms"] == 500.0
    (point,) = result["sizes"][0]["points"]
    assert point["lost_calls"] == 0 and point["reply_ms_client"]["n"] == 4  # both sentences of both calls answered
    assert point["per_process_cores"][0] > 0  # the instance's recognition worker counted with it
