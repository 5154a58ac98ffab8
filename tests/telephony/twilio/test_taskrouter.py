"""TaskRouter availability against the Twilio fake (real twilio client, real HTTP on loopback): free workers mean
a live transfer, an empty or backed-up queue means the queue's busy mode, and hours or a missing TaskRouter queue
or an unreachable TaskRouter leave the decision to the schedule.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from dialogs.package import EscalationReason, HandoffPackage
from dialogs.routing import (
    CallMetadata,
    Hours,
    Overflow,
    QueueAvailability,
    QueueConfig,
    Router,
    ScheduleAvailability,
    Target,
)
from telephony.replay.twilio_fake import TwilioFake
from telephony.twilio.rest import TwilioRest
from telephony.twilio.taskrouter import TaskRouterAvailability

WORKSPACE = "WS" + "a" * 32
TASK_QUEUE = "WQ" + "b" * 32
STATS_PATH = f"/v1/Workspaces/{WORKSPACE}/TaskQueues/{TASK_QUEUE}/RealTimeStatistics"
TUESDAY_NOON = datetime(2026, 3, 3, 17, tzinfo=UTC)  # 12:00 in New York
TUESDAY_NIGHT = datetime(2026, 3, 4, 3, tzinfo=UTC)  # 22:00 in New York
OFFICE = Hours(tz="America/New_York", weekly={d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")})


def support_queue(**overrides: object) -> QueueConfig:
    fields: dict[str, object] = {
        "name": "support",
        "description": "general support",
        "targets": [Target(kind="taskrouter", workflow_sid="WW" + "1" * 32)],
        "hours": OFFICE,
        "typical_wait_s": 90,
        "max_wait_s": 600,
        "task_queue_sid": TASK_QUEUE,
        "overflow": Overflow(when_closed="ticket", when_busy="voicemail"),
    }
    fields.update(overrides)
    return QueueConfig.model_validate(fields)


def package() -> HandoffPackage:
    return HandoffPackage(
        handoff_id="CA5-h1",
        call_sid="CA5",
        primary_issue="Order never arrived.",
        user_goal="Find the parcel.",
        reason=EscalationReason(category="capability_gap", trigger="explicit_request", detail="Asked for a person."),
        recommended_queue="support",
    )


@pytest.fixture
async def fake() -> AsyncIterator[TwilioFake]:
    async with TwilioFake.running() as fake:
        yield fake


@pytest.fixture
def rest(fake: TwilioFake) -> Iterator[TwilioRest]:
    with TwilioRest(fake.account_sid, fake.auth_token, fake.base_url, attempts=1) as rest:
        yield rest


@pytest.fixture
def availability(rest: TwilioRest) -> TaskRouterAvailability:
    return TaskRouterAvailability(rest, WORKSPACE)


async def check(availability: TaskRouterAvailability, queue: QueueConfig, now: datetime) -> QueueAvailability:
    return await asyncio.to_thread(availability.check, queue, now)


async def test_free_workers_and_no_waiting_tasks_mean_open_with_no_wait(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    fake.set_queue_stats(WORKSPACE, TASK_QUEUE, available_workers=2, pending=0)
    state = await check(availability, support_queue(), TUESDAY_NOON)
    assert state == QueueAvailability(
        open=True, available_agents=2, expected_wait_s=0, source="taskrouter", detail="2 agents free, 0 tasks waiting"
    )
    [request] = fake.requests_to("RealTimeStatistics")
    assert (request.method, request.path, request.authorized) == ("GET", STATS_PATH, True)


async def test_no_free_workers_with_tasks_waiting_means_no_agents_and_a_wait(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    fake.set_queue_stats(WORKSPACE, TASK_QUEUE, available_workers=0, pending=3, reserved=1, longest_wait_s=45)
    state = await check(availability, support_queue(), TUESDAY_NOON)
    assert (state.open, state.available_agents, state.source) == (True, 0, "taskrouter")
    assert state.expected_wait_s == 4 * 90  # four tasks ahead at the typical 90 s each, nobody free
    assert state.detail == "0 agents free, 4 tasks waiting"


async def test_the_longest_waiting_task_sets_the_wait_when_it_is_longer(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    fake.set_queue_stats(WORKSPACE, TASK_QUEUE, available_workers=2, pending=1, longest_wait_s=700)
    state = await check(availability, support_queue(), TUESDAY_NOON)
    assert (state.available_agents, state.expected_wait_s) == (2, 700)


async def test_a_queue_without_a_task_queue_sid_gets_the_schedules_answer_without_a_request(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    queue = support_queue(task_queue_sid=None)
    state = await check(availability, queue, TUESDAY_NOON)
    assert state == ScheduleAvailability().check(queue, TUESDAY_NOON)
    assert (state.open, state.source, state.expected_wait_s, state.available_agents) == (True, "schedule", 90, None)
    assert fake.requests == []


async def test_a_queue_outside_its_hours_is_closed_without_asking_taskrouter(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    fake.set_queue_stats(WORKSPACE, TASK_QUEUE, available_workers=5)
    state = await check(availability, support_queue(), TUESDAY_NIGHT)
    assert (state.open, state.source) == (False, "schedule")
    assert "outside opening hours (America/New_York)" in state.detail
    assert fake.requests == []


@pytest.mark.parametrize("status", [500, 503, 404])
async def test_an_unreachable_taskrouter_leaves_the_schedules_answer_and_says_so(
    fake: TwilioFake, availability: TaskRouterAvailability, status: int
) -> None:
    fake.set_queue_stats(WORKSPACE, TASK_QUEUE, available_workers=0, pending=9)
    fake.fail_next("RealTimeStatistics", status, times=5)
    state = await check(availability, support_queue(), TUESDAY_NOON)
    assert (state.open, state.available_agents, state.expected_wait_s, state.source) == (True, None, 90, "schedule")
    assert "TaskRouter" in state.detail
    assert f"HTTP {status}" in state.detail
    assert len(fake.requests_to("RealTimeStatistics")) >= 1


async def test_an_unknown_task_queue_falls_back_to_the_schedule(availability: TaskRouterAvailability) -> None:
    state = await check(availability, support_queue(task_queue_sid="WQ" + "c" * 32), TUESDAY_NOON)
    assert (state.open, state.source) == (True, "schedule")
    assert "TaskRouter unreachable" in state.detail


async def test_the_router_sends_a_call_to_a_queue_with_free_workers(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    fake.set_queue_stats(WORKSPACE, TASK_QUEUE, available_workers=3)
    router = Router([support_queue()], [], "support")
    decision = await asyncio.to_thread(router.route, package(), CallMetadata(), TUESDAY_NOON, availability)
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("support", "transfer", 0)
    assert decision.availability.source == "taskrouter"


async def test_the_router_turns_no_free_workers_into_the_queues_when_busy_mode(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    fake.set_queue_stats(WORKSPACE, TASK_QUEUE, available_workers=0, pending=0)
    router = Router([support_queue()], [], "support")
    decision = await asyncio.to_thread(router.route, package(), CallMetadata(), TUESDAY_NOON, availability)
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("support", "voicemail", None)
    assert decision.availability.available_agents == 0
    assert any("support is busy (0 agents free, 0 tasks waiting) -> voicemail" in r for r in decision.reasons)
    assert decision.availability.source == "taskrouter"


async def test_the_router_turns_a_long_taskrouter_wait_into_the_when_busy_mode(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    fake.set_queue_stats(WORKSPACE, TASK_QUEUE, available_workers=1, pending=20, longest_wait_s=300)
    router = Router([support_queue()], [], "support")
    decision = await asyncio.to_thread(router.route, package(), CallMetadata(), TUESDAY_NOON, availability)
    assert decision.mode == "voicemail"
    assert decision.availability.expected_wait_s == 20 * 90


async def test_the_router_falls_back_to_the_schedule_when_taskrouter_fails(
    fake: TwilioFake, availability: TaskRouterAvailability
) -> None:
    fake.fail_next("RealTimeStatistics", 500, times=5)
    router = Router([support_queue()], [], "support")
    decision = await asyncio.to_thread(router.route, package(), CallMetadata(), TUESDAY_NOON, availability)
    assert (decision.mode, decision.expected_wait_s) == ("transfer", 90)
    assert any("TaskRouter unreachable" in r for r in decision.reasons)
