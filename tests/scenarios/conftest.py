"""Replays whole calls: real FastAPI and uvicorn on loopback, real websocket, real VAD and pyttsx3 prompts,
oracle ASR (reference text, timed by the real VAD)."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.replay import ReplayOptions, ReplayResult, replay_in_process
from telephony.replay_check import check
from telephony.scenario import Scenario, load_scenario
from telephony.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "audio_fixtures" / "scenarios"
SPEED = 10.0  # ten times real time: the media clock stays exact, only the wall clock is compressed


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(tts_cache_dir=tmp_path_factory.mktemp("tts"), _env_file=None)  # type: ignore[call-arg]


def timeline(result: ReplayResult) -> str:
    lines = [f"{e['t_ms']:>7} {e['source']:>6} {e['kind']} {e['detail'] or ''}" for e in result.events]
    failed = [f"  {c['name']}: expected {c['expected']!r}, got {c['actual']!r}" for c in result.checks if not c["ok"]]
    return "\n".join(["failed checks:", *failed, "timeline:", *lines])


async def replay(scenario: Scenario, settings: Settings, **options: object) -> ReplayResult:
    """Replay a scenario and run its checks; the result's `passed` says whether every check held."""
    result = await replay_in_process(scenario, ReplayOptions(speed=SPEED, **options), settings=settings)  # type: ignore[arg-type]
    checks = check(result, scenario.expect)
    result.checks = [c.as_dict() for c in checks]
    result.passed = all(c.ok for c in checks)
    return result


def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.yaml"))


def load(name: str) -> Scenario:
    return load_scenario(SCENARIOS / name)
