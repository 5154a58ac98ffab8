"""A handful of whole calls stay on real loopback sockets and the wall clock, to keep the wiring honest:
uvicorn, a real websocket upgrade, frames paced in time, and the same outcome the virtual clock gives."""

from __future__ import annotations

import pytest

from telephony.server.settings import Settings
from tests.scenarios.conftest import load, replay, timeline

WALL_SLACK_MS = 250  # a loaded machine delays frames on the wall clock; a virtual one never does
WALL = ["talk_to_a_person.yaml", "barge_in.yaml", "websocket_drop_mid_handoff.yaml", "twilio_500_on_update.yaml"]


@pytest.mark.parametrize("name", WALL, ids=[n.removesuffix(".yaml") for n in WALL])
async def test_a_call_on_real_sockets_and_the_wall_clock_meets_its_expectations(name: str, settings: Settings) -> None:
    result = await replay(load(name), settings, clock="wall")
    assert result.clock == "wall"
    assert result.checks and result.passed, timeline(result)


async def test_the_virtual_clock_changes_nothing_the_call_comes_to(settings: Settings) -> None:
    scenario = load("login_lockout.yaml")
    virtual, wall = await replay(scenario, settings), await replay(scenario, settings, clock="wall")

    def shape(result):  # type: ignore[no-untyped-def]
        caller = [t["text"] for t in result.transcript if t["speaker"] == "caller"]
        prompts = [(p["prompt_id"], p["cut_off"]) for p in result.prompts]
        return result.outcome["kind"], result.handoff["reason"], caller, prompts

    assert virtual.clock == "virtual" and wall.clock == "wall"
    assert shape(virtual) == shape(wall)
    # the same prompts start at the same moments of the call, give or take the wall clock's scheduling
    starts = zip((p["start_ms"] for p in virtual.prompts), (p["start_ms"] for p in wall.prompts), strict=True)
    assert all(abs(v - w) <= WALL_SLACK_MS for v, w in starts)
