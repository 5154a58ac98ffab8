"""The load benchmark still drives `handoff serve` in a subprocess end to end: two short calls, every reply
heard, figures reported (nothing about speed is asserted), and the server's CPU told by part."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from unittest import mock

from bench.load import CPU_PARTS_SHIM, REST, main

_spec = importlib.util.spec_from_file_location("bench_cpu_parts", CPU_PARTS_SHIM / "sitecustomize.py")
assert _spec is not None and _spec.loader is not None
shim = sys.modules["bench_cpu_parts"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shim)  # without BENCH_CPU_PARTS_DIR it only defines its parts
PARTS, Part, FIRST_OF_READ = shim.PARTS, shim.Part, shim.FIRST_OF_READ


def test_two_calls_are_answered_and_measured_with_the_servers_cpu_by_part(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    code = main(["--calls", "2", "--turns", "1", "--ramp", "0", "--no-warm", "--tts-cache", str(tmp_path / "tts"),
                 "--cpu-parts", "--json", str(out)])  # fmt: skip
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

    parts = {row["part"]: row for row in point["cpu_parts"]}
    known = {part.name for part in PARTS} | {FIRST_OF_READ}
    assert set(parts) - known == {REST}
    ran = {name for name in known if not name.startswith(("desk: a decision", "sweeps", "recognition tasks"))}
    assert set(parts) >= ran  # a call of one turn runs every other part (it decides nothing: the caller hangs up)
    assert parts[REST]["cpu_s"] >= -0.03  # the top parts are disjoint: together no more than the server's CPU
    heard, first = parts["inside: media messages heard"], parts[FIRST_OF_READ]
    assert heard["calls"] > 100 and heard["cpu_s"] > 0  # a turn of two calls: seconds of 20 ms frames
    assert 0 < first["calls"] <= heard["calls"] and first["cpu_s"] <= heard["cpu_s"]
    assert parts["inside: dialog events"]["calls"] >= 4  # each call's start and its one turn, at least
    assert parts["store: call record writes (worker threads)"]["calls"] >= 2


def test_a_part_the_server_no_longer_has_is_named_instead_of_timed(tmp_path: Path) -> None:
    gone = Part("a renamed function", "json", "no_such_function")
    with mock.patch.object(shim, "PARTS", (gone,)):
        shim._arm(tmp_path)
    assert not (tmp_path / "armed").exists()
    assert "no_such_function" in (tmp_path / "error").read_text()
