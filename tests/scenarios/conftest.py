"""Replays whole calls through the real app: its routes, the real VAD and pyttsx3 prompts, oracle ASR (reference
text, timed by the real VAD). On the virtual clock by default (in process, each frame waits for the call to
settle); `test_wall_clock.py` keeps a few on real loopback sockets and the wall clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.replay.checks import check
from telephony.replay.in_process import replay_in_process
from telephony.replay.player import ReplayOptions
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import Scenario, load_scenario
from telephony.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "audio_fixtures" / "scenarios"
WALL_SPEED = 10.0  # on the wall clock, ten times real time: the media clock stays exact


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(tts_cache_dir=tmp_path_factory.mktemp("tts"), _env_file=None)  # type: ignore[call-arg]


def timeline(result: ReplayResult) -> str:
    lines = [f"{e['t_ms']:>7} {e['source']:>6} {e['kind']} {e['detail'] or ''}" for e in result.events]
    failed = [f"  {c['name']}: expected {c['expected']!r}, got {c['actual']!r}" for c in result.checks if not c["ok"]]
    return "\n".join(["failed checks:", *failed, "timeline:", *lines])


async def replay(scenario: Scenario, settings: Settings, **options: object) -> ReplayResult:
    """Replay a scenario (on the virtual clock unless `clock="wall"`) and run its checks; the result's `passed`
    says whether every check held."""
    result = await replay_in_process(scenario, ReplayOptions(speed=WALL_SPEED, **options), settings=settings)  # type: ignore[arg-type]
    checks = check(result, scenario.expect)
    result.checks = [c.as_dict() for c in checks]
    result.passed = all(c.ok for c in checks)
    return result


def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.yaml"))


def load(name: str) -> Scenario:
    return load_scenario(SCENARIOS / name)
