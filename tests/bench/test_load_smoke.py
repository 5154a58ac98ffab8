"""The load benchmark still drives `handoff serve` in a subprocess end to end: two short calls, every reply
heard, figures reported (nothing about speed is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.load import main


def test_two_calls_are_answered_and_measured(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    code = main(["--calls", "2", "--turns", "1", "--ramp", "0", "--no-warm", "--tts-cache", str(tmp_path / "tts"),
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    (point,) = json.loads(out.read_text())["points"]
    assert point["lost_calls"] == 0
    assert point["reply_ms_client"]["n"] == 2 and point["greeting_ms"]["n"] == 2
    assert point["reply_ms_client"]["p50"] >= 0
    assert point["server_us_per_inbound_frame"] > 0
    assert 0 < point["server_cpu_event_loop_s"] <= point["server_cpu_s"]  # the call path runs on the loop's thread
    assert 0 <= point["server_cpu_system_s"] <= point["server_cpu_s"]
    assert point["event_loop_wakeups_per_s"] > 0  # the loop sleeps between a call's frames, 20 ms apart
    assert point["server_cpu_per_load_generator_cpu"] > 0
