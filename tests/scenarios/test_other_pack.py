"""The bot pack owns the domain: a second pack, for a different business (Northwind Broadband, home internet),
runs whole calls through the same server with no code change, in its own words, to its own queues."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogs.pack import load_pack
from telephony.replay.scenario import load_scenario
from telephony.server.settings import Settings
from tests.scenarios.conftest import replay, timeline

PACKS = Path(__file__).resolve().parents[1] / "packs"
NORTHWIND = PACKS / "northwind.yaml"
SCENARIOS = sorted((PACKS / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def northwind(settings: Settings) -> Settings:
    return settings.model_copy(update={"bot_pack": NORTHWIND})


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_a_northwind_call_meets_its_expectations(path: Path, northwind: Settings) -> None:
    result = await replay(load_scenario(path), northwind)
    assert result.checks, f"{path.name} checks nothing"
    assert result.passed, timeline(result)


async def test_nothing_the_caller_hears_comes_from_the_default_pack(northwind: Settings) -> None:
    result = await replay(load_scenario(PACKS / "scenarios" / "outage_then_engineer.yaml"), northwind)
    heard = " ".join(p["text"] for p in result.prompts) + " " + str(result.outcome.get("whisper", ""))
    larkspur = load_pack()
    assert larkspur.company not in heard
    for key in ("greeting", "anything_else", "handoff_sending"):
        assert larkspur.prompts[key].split("{")[0][:25] not in heard
    assert load_pack(NORTHWIND).agent.press_one in heard
