"""A month of synthetic calls for the analytics and review pages, made by replaying scenarios through the real
server (dialog, desk, store) rather than by writing rows, so the figures come out of the same code as a real
month's. The plan is seeded: the same seed gives the same calls, callers, times and feedback.

Each planned call is a scenario from `audio_fixtures/scenarios` whose `expect` says how it must end (ended by
the bot, or handed to a category and queue), replayed at its planned time from a caller drawn from a small pool
(so some call again). The plan keeps what each call must come to; every replay is checked against it. Agents'
wrap-ups and reviewers' verdicts are then stored through the store, as the console would, with known shares.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from telephony.replay.checks import check
from telephony.replay.errors import ReplayError
from telephony.replay.in_process import replay_in_process
from telephony.replay.player import ReplayOptions
from telephony.replay.scenario import AgentBehaviour, CallInfo, Expectation, Scenario, load_scenario
from telephony.server.settings import Settings
from telephony.store import Store
from telephony.store.review_records import Verdict
from voice.tts import SpeechSynthesizer

TEMPLATES = (  # scenario files whose expect block says how the call ends (and where a handoff goes)
    "order_status_resolved", "hours_resolved", "return_policy_resolved", "password_reset_resolved",
    "reschedule_resolved", "insurance_accepted_resolved", "order_number_keyed", "everyday_verification_code",
    "talk_to_a_person", "high_value_refund", "billing_dispute", "security_issue", "distress", "login_lockout",
    "order_not_found", "reschedule_insurance", "cancellation", "other_language", "taxonomy_person_request_topic_queue",
)  # fmt: skip
LAYERS = ("prompt", "trigger", "routing", "summary_template", "tool_or_data", "asr")
DEFAULT_CALLER = CallInfo().from_number
UNANSWERED = 0.2  # of the handoffs an agent would answer: these ring an agent who does not take the call
NOBODY: tuple[AgentBehaviour, ...] = ("busy", "no-answer", "reject-whisper")
OPEN_FROM_UTC, OPEN_HOURS = 14, 7  # 09:00-16:00 in New York: every queue is open


@dataclass(frozen=True)
class PlannedCall:
    """One call of the month: the scenario to replay (its time, caller and CallSid set) and how it must end."""

    scenario: Scenario
    template: str
    ends_with: str  # handoff | end
    category: str | None
    queue: str | None
    unanswered: bool = False  # the agent was busy, did not answer, or declined


@dataclass
class MonthTruth:
    """What the month must show, known from the plan and the feedback given, not read back from the store."""

    calls: int = 0
    handoffs: int = 0
    unanswered: int = 0
    by_category: Counter[str] = field(default_factory=Counter)
    by_queue: Counter[str] = field(default_factory=Counter)
    contained_24h: int = 0
    wrapups: int = 0
    had_to_repeat: int = 0
    wrong_queue: int = 0
    ratings: list[int] = field(default_factory=list)
    reviewed: int = 0
    avoidable: int = 0


def plan_month(
    scenarios_dir: Path, start: datetime, *, days: int, calls: int, seed: int, callers: int
) -> list[PlannedCall]:
    """The month's calls, in time order: weekdays in opening hours, from a pool of `callers` numbers."""
    rng = random.Random(seed)
    templates = [load_scenario(scenarios_dir / f"{name}.yaml") for name in TEMPLATES]
    weekdays = [start + timedelta(days=d) for d in range(days) if (start + timedelta(days=d)).weekday() < 5]
    if not weekdays:
        raise ReplayError("the month has no weekday to place calls on")
    numbers = [f"+1555700{n:04d}" for n in range(callers)]
    planned = []
    for i in range(calls):
        day = rng.choice(weekdays).replace(hour=OPEN_FROM_UTC, minute=0, second=0, microsecond=0)
        at = day + timedelta(seconds=rng.randrange(OPEN_HOURS * 3600))
        template = rng.choice(templates)
        expect = template.expect
        known = template.call.from_number != DEFAULT_CALLER  # the pack's data knows this caller: keep them
        number = template.call.from_number if known else rng.choice(numbers)
        call = template.call.model_copy(update={"from_number": number, "call_sid": f"CA{seed:04d}{i:028d}"})
        update: dict[str, object] = {"at": at, "call": call}
        unanswered = expect.decision == "handoff" and template.agent == "answer" and rng.random() < UNANSWERED
        if unanswered:  # nobody takes it: the caller is offered a callback; only where the call went is checked
            update["agent"] = rng.choice(NOBODY)
            update["expect"] = Expectation(decision=expect.decision, reason=expect.reason, queue=expect.queue)
        scenario = template.model_copy(update=update)
        category = expect.reason.category if expect.reason is not None else None
        planned.append(
            PlannedCall(scenario, template.name, expect.decision or "end", category, expect.queue, unanswered)
        )
    return sorted(planned, key=lambda p: p.scenario.at)


def truth_of(plan: list[PlannedCall]) -> MonthTruth:
    """The counts the plan makes, and containment: bot-ended calls whose number did not call again within 24 h."""
    truth = MonthTruth(calls=len(plan))
    for p in plan:
        if p.ends_with == "handoff":
            truth.handoffs += 1
            truth.unanswered += p.unanswered
            truth.by_category[p.category or ""] += 1
            truth.by_queue[p.queue or ""] += 1
            continue
        me, at = p.scenario.call.from_number, p.scenario.at
        again = any(o.scenario.call.from_number == me and at < o.scenario.at <= at + timedelta(hours=24) for o in plan)
        truth.contained_24h += 0 if again else 1
    return truth


async def replay_month(plan: list[PlannedCall], settings: Settings, synthesizer: SpeechSynthesizer) -> list[str]:
    """Replay every planned call into `settings`' database; the calls whose replay broke its expectation."""
    options = ReplayOptions(asr="oracle", out_dir=None)
    broken = []
    for p in plan:
        result = await replay_in_process(p.scenario, options, settings=settings, caller_synthesizer=synthesizer)
        if not all(c.ok for c in check(result, p.scenario.expect)):
            broken.append(f"{p.template} ({p.scenario.call.call_sid})")
    return broken


async def make_month(plan: list[PlannedCall], settings: Settings, *, seed: int) -> tuple[MonthTruth, list[str]]:
    """Replay the plan into `settings`' database, then store the agents' and reviewers' feedback; what the month
    must show, and the replays that broke their expectation."""
    if settings.database_url is None:
        raise ReplayError("a month is made in a database: set its URL")
    truth = truth_of(plan)
    synthesizer = SpeechSynthesizer(settings.tts_cache_dir, rate=165)
    try:
        broken = await replay_month(plan, settings, synthesizer)
    finally:
        synthesizer.close()
    give_feedback(settings.database_url, plan, truth, seed=seed, queues=sorted(truth.by_queue))
    return truth, broken


def give_feedback(store_url: str, plan: list[PlannedCall], truth: MonthTruth, *, seed: int, queues: list[str]) -> None:
    """Agents wrap up each bridged handoff and reviewers mark about half of all handoffs, with seeded answers."""
    rng = random.Random(seed + 1)
    moment = [datetime.now().astimezone()]
    store = Store(store_url, clock=lambda: moment[0])
    try:
        for p in plan:
            if p.ends_with != "handoff":
                continue
            found = store.handoff_for_call(p.scenario.call.call_sid or "")
            if found is None:
                continue
            handoff_id = str(found["handoff_id"])
            moment[0] = p.scenario.at + timedelta(minutes=rng.randint(3, 25))
            if found.get("status") == "bridged":
                _wrap_up(store, handoff_id, p, truth, rng, queues)
            if rng.random() < 0.5:
                _review(store, handoff_id, p, truth, rng)
    finally:
        store.close()


def _wrap_up(
    store: Store, handoff_id: str, p: PlannedCall, truth: MonthTruth, rng: random.Random, queues: list[str]
) -> None:
    repeat, wrong = rng.random() < 0.25, rng.random() < 0.1
    rating = rng.choice((2, 3, 4, 4, 5, 5))
    others = [q for q in queues if q != p.queue] or queues
    fields: dict[str, object] = {
        "disposition": "resolved", "resolved": rng.random() < 0.8, "summary_rating": rating,
        "missing_facts": rng.choice((None, None, "order number", "appointment date")), "wrong_facts": None,
        "had_to_repeat": repeat, "repeated_fact": "order number" if repeat else None,
        "wrong_queue": wrong, "right_queue": rng.choice(others) if wrong else None, "notes": None,
    }  # fmt: skip
    store.save_wrapup(handoff_id, None, "agent-" + str(rng.randint(1, 6)), fields)
    truth.wrapups += 1
    truth.had_to_repeat += repeat
    truth.wrong_queue += wrong
    truth.ratings.append(rating)


def _review(store: Store, handoff_id: str, p: PlannedCall, truth: MonthTruth, rng: random.Random) -> None:
    avoidable = rng.random() < 0.3
    verdict = Verdict(
        "avoidable" if avoidable else "necessary",
        rng.choice(LAYERS) if avoidable else None,
        f"seeded review of {p.template}" if avoidable else None,
    )
    store.save_review(handoff_id, "reviewer-" + str(rng.randint(1, 2)), verdict)
    truth.reviewed += 1
    truth.avoidable += avoidable
