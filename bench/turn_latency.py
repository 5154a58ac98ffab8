"""How long a caller waits for the bot after they stop talking, measured on whole replayed calls.

The caller's wait is the end-of-speech silence window (the VAD must hear ``end_of_speech_ms`` of silence
before it closes an utterance) plus everything the server does after the window closes: recognition,
the dialog, the prompt lookup and sending the first reply frame. The window is a setting; the rest is our
code, and this benchmark keeps it visible so a change that slows a turn down shows up (STYLE.md section 7).

Each scenario is replayed with ``telephony.replay.in_process.replay_in_process`` on the wall clock: a real
FastAPI app under uvicorn on a loopback websocket, oracle ASR, the real VAD and the real pyttsx3 prompt cache.
The server records a ``TurnLatency`` per caller turn; this collects them all and reports p50/p95/max, cached
and uncached prompts apart. The target: the part after the window, p50 <= 40 ms with a cached prompt.

Run it from the repository root in the project's environment::

    python bench/turn_latency.py                       # every scenario, 3 times each, in real time
    python bench/turn_latency.py --scenario audio_fixtures/scenarios/barge_in.yaml --repeat 5
    python bench/turn_latency.py --json /tmp/after.json

Keep ``--speed`` at 1 (real time) for figures worth quoting. The window is counted on the media clock and
``after_window_ms`` on the wall clock, and the two agree only in real time: at ``--speed 10`` the 600 ms
window passes in 60 ms of wall time. The harness also paces frames with ``asyncio.sleep`` (20/speed ms
apart, sent back to back when it falls behind), so at higher speeds the frame that closes the window shares
the event loop with a burst of frames behind it, and ``after_window_ms`` can measure the harness as well as
the bot. The second section is the harness's view: when the reply reached its line (media clock, in 20 ms
frames), and the wall time of each replayed call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # this checkout's code, not whichever one is installed (comparing builds)
    sys.path.insert(0, str(REPO_ROOT))

from telephony.calls.records import TurnLatency  # noqa: E402
from telephony.replay.in_process import replay_in_process  # noqa: E402
from telephony.replay.player import ReplayOptions  # noqa: E402
from telephony.replay.result import ReplayResult  # noqa: E402
from telephony.replay.scenario import Scenario, load_scenario  # noqa: E402
from telephony.server.settings import Settings, load_settings  # noqa: E402

TARGET_AFTER_WINDOW_P50_MS = 40.0  # with a cached prompt: what the caller waits beyond the silence window
SLOWEST_SHOWN = 3  # turns listed under the table, so an outlier can be traced to its call

DEFAULT_SCENARIOS = REPO_ROOT / "audio_fixtures" / "scenarios"
DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "turn_latency.json"


@dataclass(frozen=True, slots=True)
class TurnSample:
    """One caller turn: the server's TurnLatency, where it came from, and what the harness saw."""

    scenario: str
    run: int
    turn: int  # 0-based, among the call's measured turns
    prompt_id: str
    cached: bool
    last_voiced_ms: int  # media clock
    window_closed_ms: int  # media clock
    after_window_ms: float  # wall clock, measured by the server
    total_ms: float  # (a): window_closed_ms - last_voiced_ms + after_window_ms
    line_wait_ms: int | None  # last voiced frame to the first reply frame on the harness's line (media clock)


@dataclass(frozen=True, slots=True)
class CallRun:
    """One replayed call, timed from the harness: server start-up, webhooks, the stream and the record."""

    scenario: str
    run: int
    wall_s: float
    call_ms: int  # the call's length on the media clock
    turns: int


@dataclass(frozen=True, slots=True)
class Collection:
    samples: list[TurnSample]
    calls: list[CallRun]


@dataclass(frozen=True, slots=True)
class Distribution:
    """Milliseconds: percentiles interpolate linearly between samples (numpy's default)."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None


# --- collecting --------------------------------------------------------------------------------------------


def scenario_files(paths: Sequence[Path]) -> list[Path]:
    """The scenario files named, a folder standing for every ``*.yaml`` in it."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return files


async def collect(paths: Sequence[Path], repeat: int, speed: float, settings: Settings | None = None) -> Collection:
    """Replay each scenario ``repeat`` times, one call at a time, and gather every turn it measured.

    ``settings`` are the server's (HANDOFF_* variables and .env when not given), as ``handoff serve`` reads them.
    """
    scenarios = [load_scenario(path) for path in scenario_files(paths)]
    samples: list[TurnSample] = []
    calls: list[CallRun] = []
    for run in range(repeat):  # scenario order within a round, so a slow spell touches every scenario alike
        for scenario in scenarios:
            result, wall_s = await replay_once(scenario, speed, settings)
            turns = turn_samples(result, run)
            samples.extend(turns)
            calls.append(CallRun(scenario.name, run, round(wall_s, 3), call_length_ms(result), len(turns)))
    return Collection(samples, calls)


async def replay_once(scenario: Scenario, speed: float, settings: Settings | None) -> tuple[ReplayResult, float]:
    started = time.perf_counter()
    result = await replay_in_process(scenario, ReplayOptions(speed=speed, clock="wall"), settings=settings)
    return result, time.perf_counter() - started


def turn_samples(result: ReplayResult, run: int) -> list[TurnSample]:
    """The call's TurnLatency records, each matched with the reply's arrival on the harness's line."""
    latencies = [TurnLatency.model_validate(entry) for entry in result.latencies]
    replies = [e["t_ms"] for e in result.events if e["source"] == "line" and e["kind"] == "bot_audio_start"]
    samples = []
    for turn, latency in enumerate(latencies):
        next_close = latencies[turn + 1].window_closed_ms if turn + 1 < len(latencies) else None
        arrived = _first_reply(replies, latency.window_closed_ms, next_close)
        samples.append(
            TurnSample(
                scenario=result.scenario,
                run=run,
                turn=turn,
                prompt_id=latency.prompt_id,
                cached=latency.cached,
                last_voiced_ms=latency.last_voiced_ms,
                window_closed_ms=latency.window_closed_ms,
                after_window_ms=latency.after_window_ms,
                total_ms=round(latency.total_ms, 3),
                line_wait_ms=None if arrived is None else arrived - latency.last_voiced_ms,
            )
        )
    return samples


def _first_reply(replies: Iterable[int], closed_ms: int, before_ms: int | None) -> int | None:
    """When the first stretch of bot audio after the window began on the line, if it began a new stretch.

    A reply that continues audio still playing starts no new stretch; then there is nothing to match, and
    the bound keeps a later turn's reply from being taken for this one.
    """
    for t_ms in replies:
        if t_ms >= closed_ms and (before_ms is None or t_ms < before_ms):
            return t_ms
    return None


def call_length_ms(result: ReplayResult) -> int:
    return max((e["t_ms"] for e in result.events if e["source"] == "line"), default=0)


# --- summarising -------------------------------------------------------------------------------------------


def distribution(values: Sequence[float]) -> Distribution:
    if not values:
        return Distribution(0, None, None, None)
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return Distribution(len(values), round(float(p50), 3), round(float(p95), 3), round(max(values), 3))


def summarize(samples: Sequence[TurnSample]) -> dict[str, dict[str, Distribution]]:
    """Per prompt group (cached, uncached, all): (a) the total wait, (b) after the window, the line's view."""
    groups = {
        "cached": [s for s in samples if s.cached],
        "uncached": [s for s in samples if not s.cached],
        "all": list(samples),
    }
    return {
        name: {
            "total_ms": distribution([s.total_ms for s in group]),
            "after_window_ms": distribution([s.after_window_ms for s in group]),
            "line_wait_ms": distribution([s.line_wait_ms for s in group if s.line_wait_ms is not None]),
        }
        for name, group in groups.items()
    }


def target_met(summary: dict[str, dict[str, Distribution]]) -> bool | None:
    """None when there was no cached-prompt turn to judge."""
    p50 = summary["cached"]["after_window_ms"].p50
    return None if p50 is None else p50 <= TARGET_AFTER_WINDOW_P50_MS


# --- report ------------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def print_turn_table(console: Console, summary: dict[str, dict[str, Distribution]], speed: float) -> None:
    table = Table(title=f"Caller's wait per turn, server-measured, ms (speed {speed:g})")
    table.add_column("measure", no_wrap=True)
    table.add_column("prompt")
    for heading in ("n", "p50", "p95", "max"):
        table.add_column(heading, justify="right")
    measures = {
        "total_ms": "(a) total: last voiced frame\n→ first reply frame",
        "after_window_ms": "(b) after the silence window",
    }
    for key, label in measures.items():
        for group in ("cached", "uncached", "all"):
            dist = summary[group][key]
            table.add_row(
                label if group == "cached" else "", group, str(dist.count), *map(_ms, (dist.p50, dist.p95, dist.max))
            )
        table.add_section()
    console.print(table)
    met = target_met(summary)
    verdict = {True: "[green]met[/green]", False: "[red]missed[/red]", None: "[yellow]no cached turns[/yellow]"}[met]
    console.print(
        f"Target: (b) p50 <= {TARGET_AFTER_WINDOW_P50_MS:g} ms with a cached prompt: {verdict} "
        f"(p50 {_ms(summary['cached']['after_window_ms'].p50)} ms)."
    )
    if summary["uncached"]["total_ms"].count == 0:
        console.print(
            "No uncached turns: the server synthesises every fixed prompt at start-up, so a call only meets an "
            "uncached prompt when the dialog says something not in its fixed set."
        )


def print_slowest(console: Console, samples: Sequence[TurnSample]) -> None:
    slowest = sorted(samples, key=lambda s: s.after_window_ms, reverse=True)[:SLOWEST_SHOWN]
    for s in slowest:
        console.print(
            f"slowest (b): {s.after_window_ms:.1f} ms, {s.scenario} run {s.run + 1} turn {s.turn + 1} "
            f"({s.prompt_id}, {'cached' if s.cached else 'uncached'}, window closed at {s.window_closed_ms} ms)"
        )


def print_harness_tables(
    console: Console, summary: dict[str, dict[str, Distribution]], calls: Sequence[CallRun]
) -> None:
    line = summary["all"]["line_wait_ms"]
    table = Table(title="Harness side: last voiced frame → reply on the line, ms of media clock (20 ms steps)")
    for heading in ("n", "p50", "p95", "max"):
        table.add_column(heading, justify="right")
    table.add_row(str(line.count), *map(_ms, (line.p50, line.p95, line.max)))
    console.print(table)

    per_call = Table(title="Harness side: wall time per replayed call (server start-up to call record)")
    per_call.add_column("scenario", no_wrap=True)
    for heading in ("calls", "turns/call", "call s\n(media)", "wall s\nmedian", "wall s\nmax"):
        per_call.add_column(heading, justify="right")
    for name in dict.fromkeys(c.scenario for c in calls):
        runs = [c for c in calls if c.scenario == name]
        walls = [c.wall_s for c in runs]
        per_call.add_row(
            name,
            str(len(runs)),
            f"{runs[0].turns}",
            f"{max(c.call_ms for c in runs) / 1000:.1f}",
            f"{float(np.median(walls)):.2f}",
            f"{max(walls):.2f}",
        )
    console.print(per_call)


def environment() -> dict[str, object]:
    """What a reader needs to judge the numbers."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
    )
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "git_commit": commit.stdout.strip() or None,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json(path: Path, args: argparse.Namespace, settings: Settings, collection: Collection) -> None:
    summary = summarize(collection.samples)
    report = {
        "benchmark": "bench/turn_latency.py",
        "measures": {
            "total_ms": "(a) window_closed_ms - last_voiced_ms + after_window_ms",
            "after_window_ms": "(b) wall ms from the frame that closed the window to the first reply frame sent",
            "line_wait_ms": "harness: first reply frame on the line - last_voiced_ms, media clock, 20 ms steps",
        },
        "target": {"after_window_ms_p50_cached_max": TARGET_AFTER_WINDOW_P50_MS, "met": target_met(summary)},
        "scenarios": [str(p) for p in scenario_files(args.scenario)],
        "repeat": args.repeat,
        "speed": args.speed,
        "end_of_speech_ms": settings.end_of_speech_ms,
        "tts_cache_dir": str(settings.tts_cache_dir),
        "summary": {group: {k: asdict(d) for k, d in measures.items()} for group, measures in summary.items()},
        "calls": [asdict(c) for c in collection.calls],
        "samples": [asdict(s) for s in collection.samples],
        "environment": environment(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--scenario",
        type=Path,
        action="append",
        help=f"scenario file or folder (repeatable; default: all of {DEFAULT_SCENARIOS.relative_to(REPO_ROOT)})",
    )
    parser.add_argument("--repeat", type=int, default=3, help="replays of each scenario (default 3)")
    parser.add_argument("--speed", type=float, default=1.0, help="1 is real time (default; see the docstring)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results as JSON")
    args = parser.parse_args(argv)
    args.scenario = args.scenario or [DEFAULT_SCENARIOS]
    if args.repeat <= 0 or args.speed <= 0:
        parser.error("--repeat and --speed must be positive")
    if not scenario_files(args.scenario):
        parser.error("no scenario files found")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("telephony.server.services").setLevel(logging.ERROR)  # the oracle-ASR warning, once per replay
    console = Console()
    settings = load_settings()
    files = scenario_files(args.scenario)
    console.print(
        f"Replaying {len(files)} scenarios x {args.repeat} at speed {args.speed:g} in process "
        "(uvicorn on loopback, oracle ASR, real VAD, cached pyttsx3 prompts); "
        f"end-of-speech window {settings.end_of_speech_ms} ms."
    )
    if args.speed != 1.0:
        console.print("[yellow]Not real time: after_window_ms measures the harness's frame bursts too.[/yellow]")
    collection = asyncio.run(collect(args.scenario, args.repeat, args.speed, settings))
    summary = summarize(collection.samples)
    print_turn_table(console, summary, args.speed)
    print_slowest(console, collection.samples)
    print_harness_tables(console, summary, collection.calls)
    write_json(args.json, args, settings, collection)
    console.print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
