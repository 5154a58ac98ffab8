"""Routing: opening hours across time zones and DST, strict targets and hours, and the router's choice of queue and
mode (transfer, callback, voicemail, ticket) with its reasons, on small hand-built queues and on the Larkspur pack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dialogs.pack import BotPack, load_pack
from dialogs.package import Category, EscalationReason, HandoffPackage
from dialogs.routing import (
    CallMetadata,
    Hours,
    Overflow,
    QueueAvailability,
    QueueConfig,
    Router,
    RoutingDecision,
    RoutingRule,
    RuleMatch,
    ScheduleAvailability,
    Target,
)

PACK: BotPack = load_pack()
NEW_YORK_WEEKDAYS = {day: "08:00-20:00" for day in ("mon", "tue", "wed", "thu", "fri")}
CATEGORIES: tuple[Category, ...] = (
    "capability_gap", "confidence_gap", "risk_compliance", "distress", "high_value", "workflow_exception"
)  # fmt: skip


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def make_package(
    *,
    queue: str = "accounts",
    category: Category = "capability_gap",
    trigger: str = "explicit_request",
    **overrides: object,
) -> HandoffPackage:
    fields: dict[str, object] = {
        "handoff_id": "CA9-h1",
        "call_sid": "CA9",
        "primary_issue": "Cannot sign in to the portal.",
        "user_goal": "Get back into the account.",
        "reason": EscalationReason(category=category, trigger=trigger, detail="The caller asked for a person."),
        "recommended_queue": queue,
    }
    fields.update(overrides)
    return HandoffPackage.model_validate(fields)


def queue(name: str, **overrides: object) -> QueueConfig:
    fields: dict[str, object] = {
        "name": name,
        "description": f"the {name} desk",
        "targets": [Target(kind="phone", number="+15005550001")],
        "typical_wait_s": 120,
    }
    fields.update(overrides)
    return QueueConfig.model_validate(fields)


@dataclass
class FixedAvailability:
    """An `Availability` that answers per queue name (default: the schedule) and records every queue it checked."""

    answers: dict[str, QueueAvailability] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)

    def check(self, queue: QueueConfig, now: datetime) -> QueueAvailability:
        self.checked.append(queue.name)
        return self.answers.get(queue.name) or ScheduleAvailability().check(queue, now)


OPEN = QueueAvailability(open=True, available_agents=3, expected_wait_s=30, source="test", detail="3 free")
CLOSED = QueueAvailability(open=False, source="test", detail="closed for the test")
NOBODY = QueueAvailability(open=True, available_agents=0, expected_wait_s=0, source="test", detail="0 free")


def assert_well_formed(decision: RoutingDecision) -> None:
    """Every decision explains itself in at least two reasons and serialises to JSON without secrets."""
    assert len(decision.reasons) >= 2, decision.reasons
    text = json.dumps(decision.model_dump(mode="json"))
    assert "password" not in text
    assert decision.mode in ("transfer", "callback", "voicemail", "ticket")
    if decision.mode != "transfer":
        assert decision.expected_wait_s is None


# --- Hours ---------------------------------------------------------------------------------------------------

NY = Hours(tz="America/New_York", weekly=NEW_YORK_WEEKDAYS, holidays=[date(2026, 12, 25)])


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 3, 3, 13), True),  # Tuesday 08:00 EST: opening minute
        (utc(2026, 3, 3, 18, 30), True),  # Tuesday 13:30 EST
        (utc(2026, 3, 4, 0, 59), True),  # Tuesday 19:59 EST, already Wednesday in UTC
        (utc(2026, 3, 4, 1), False),  # Tuesday 20:00 EST: closing is exclusive
        (utc(2026, 3, 3, 2), False),  # Monday 21:00 EST, Tuesday in UTC
        (utc(2026, 3, 3, 12, 59), False),  # Tuesday 07:59 EST
        (utc(2026, 3, 7, 15), False),  # Saturday: absent from weekly
        (utc(2026, 3, 15, 16), False),  # Sunday: absent from weekly
    ],
    ids=["tue-0800", "tue-1330", "tue-1959-wed-utc", "tue-2000", "mon-2100-tue-utc", "tue-0759", "sat", "sun"],
)
def test_new_york_hours_are_judged_in_new_york_time(moment: datetime, expected: bool) -> None:
    assert NY.open_at(moment) is expected


def test_a_new_york_weekday_queue_is_open_at_13z_on_tuesday_and_closed_at_02z() -> None:
    assert NY.open_at(utc(2026, 3, 3, 13)) is True
    assert NY.open_at(utc(2026, 3, 3, 2)) is False


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 7, 7, 12), True),  # July, EDT (UTC-4): 08:00 local
        (utc(2026, 12, 8, 12), False),  # December, EST (UTC-5): 07:00 local
        (utc(2026, 7, 8, 0, 30), False),  # July: Tuesday 20:30 EDT
        (utc(2026, 12, 9, 0, 30), True),  # December: Tuesday 19:30 EST
    ],
    ids=["july-12z", "december-12z", "july-0030z", "december-0030z"],
)
def test_daylight_saving_time_moves_the_utc_opening_hour(moment: datetime, expected: bool) -> None:
    assert NY.open_at(moment) is expected


def test_the_local_weekday_decides_not_the_utc_weekday() -> None:
    tokyo = Hours(tz="Asia/Tokyo", weekly={"mon": "09:00-18:00"})
    assert tokyo.open_at(utc(2026, 3, 2, 0, 30)) is True  # Monday 09:30 JST
    assert tokyo.open_at(utc(2026, 3, 1, 23, 30)) is False  # Monday 08:30 JST (Sunday in UTC)
    assert tokyo.open_at(utc(2026, 3, 2, 9, 30)) is False  # Monday 18:30 JST


def test_a_holiday_is_closed_during_its_usual_hours() -> None:
    assert NY.open_at(utc(2026, 12, 25, 15)) is False  # Friday 10:00 EST, Christmas
    assert NY.open_at(utc(2026, 12, 24, 15)) is True  # Thursday 10:00 EST


def test_a_holiday_is_its_local_date_not_the_utc_date() -> None:
    tokyo = Hours(tz="Asia/Tokyo", weekly={day: "00:00-23:59" for day in NEW_YORK_WEEKDAYS}, holidays=["2026-12-25"])
    assert tokyo.open_at(utc(2026, 12, 24, 16)) is False  # 01:00 JST on the 25th
    assert tokyo.open_at(utc(2026, 12, 24, 14)) is True  # 23:00 JST on the 24th


@pytest.mark.parametrize("moment", [utc(2026, 3, 8, 8), utc(2026, 3, 15, 7), utc(2026, 7, 4, 3), utc(2026, 12, 25, 12)])
def test_always_open_hours_are_open_at_any_moment(moment: datetime) -> None:
    assert Hours(always_open=True).open_at(moment) is True


def test_hours_without_any_weekly_spans_are_always_closed() -> None:
    start = utc(2026, 3, 2, 0)
    assert not any(Hours(tz="UTC").open_at(start + timedelta(hours=h)) for h in range(0, 24 * 7, 1))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"tz": ""}, "unknown time zone"),
        ({"weekly": {"monday": "08:00-20:00"}}, "unknown day 'monday'; use mon, tue"),
        ({"weekly": {"Mon": "08:00-20:00"}}, "unknown day 'Mon'"),
        ({"weekly": {"mon": "8am-8pm"}}, "hours must look like 08:00-20:00, got '8am-8pm'"),
        ({"weekly": {"mon": "08:00"}}, "hours must look like 08:00-20:00"),
        ({"weekly": {"mon": "08:00-12:00-20:00"}}, "hours must look like 08:00-20:00"),
        ({"weekly": {"mon": "25:00-26:00"}}, "hours must look like 08:00-20:00"),
        ({"weekly": {"mon": "20:00-08:00"}}, "hours end before they start: '20:00-08:00'"),
        ({"weekly": {"mon": "09:00-09:00"}}, "hours end before they start"),
        ({"holidays": ["Christmas"]}, "holidays"),
        ({"closed": True}, "closed"),
    ],
    ids=[
        "tz",
        "empty-tz",
        "day-name",
        "day-case",
        "am-pm",
        "one-time",
        "three-times",
        "hour-25",
        "overnight",
        "empty-span",
        "holiday",
        "extra-field",
    ],
)
def test_bad_hours_raise_a_validation_error_that_names_the_problem(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Hours.model_validate(fields)
    assert message in str(caught.value)


def test_hours_with_a_utc_offset_are_rejected_when_configured_not_at_call_time() -> None:
    with pytest.raises(ValidationError, match="08:00Z-20:00Z"):
        Hours(tz="America/New_York", weekly={"tue": "08:00Z-20:00Z"})


# --- Target --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "phone", "number": "+15005550001"},
        {"kind": "sip", "uri": "sip:desk@pbx.example", "headers": {"X-Queue": "billing", "x-lower": "ok"}},
        {"kind": "sip", "uri": "sip:desk@pbx.example", "username": "bot", "password": "s3cret"},
        {"kind": "client", "identity": "appointments_desk"},
        {"kind": "taskrouter", "workflow_sid": "WW" + "0" * 32},
    ],
    ids=["phone", "sip-headers", "sip-auth", "client", "taskrouter"],
)
def test_a_target_with_its_address_is_valid(fields: dict[str, object]) -> None:
    target = Target.model_validate(fields)
    assert target.describe()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "phone"}, "a phone target needs `number`"),
        ({"kind": "phone", "number": ""}, "a phone target needs `number`"),
        ({"kind": "phone", "uri": "sip:desk@pbx.example"}, "a phone target needs `number`"),
        ({"kind": "sip"}, "a sip target needs `uri`"),
        ({"kind": "sip", "uri": "desk@pbx.example"}, "a sip target's uri must start with sip:"),
        ({"kind": "sip", "uri": "tel:+15005550001"}, "must start with sip:"),
        ({"kind": "client"}, "a client target needs `identity`"),
        ({"kind": "taskrouter"}, "a taskrouter target needs `workflow_sid`"),
        ({"kind": "fax", "number": "+15005550001"}, "kind"),
        ({"kind": "phone", "number": "+15005550001", "extension": "12"}, "extension"),
        (
            {"kind": "sip", "uri": "sip:desk@pbx.example", "headers": {"Queue": "billing", "X-Ok": "1"}},
            "SIP headers must start with X- (got Queue)",
        ),
        (
            {"kind": "sip", "uri": "sip:desk@pbx.example", "headers": {"Y-A": "1", "Contact": "2"}},
            "SIP headers must start with X- (got Y-A, Contact)",
        ),
    ],
    ids=[
        "phone-none",
        "phone-empty",
        "phone-wrong-field",
        "sip-none",
        "sip-no-scheme",
        "sip-tel",
        "client",
        "taskrouter",
        "unknown-kind",
        "extra-field",
        "sip-header",
        "sip-headers",
    ],
)
def test_a_target_without_a_valid_address_raises_a_validation_error(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Target.model_validate(fields)
    assert message in str(caught.value)


# --- Router on hand-built queues -----------------------------------------------------------------------------

TUESDAY_NOON = utc(2026, 3, 3, 17)  # 12:00 EST
TUESDAY_NIGHT = utc(2026, 3, 4, 3)  # 22:00 EST
SIP_WITH_PASSWORD = Target(kind="sip", uri="sip:desk@pbx.example", username="bot", password="hunter2-secret")


def small_router(**accounts: object) -> Router:
    return Router(
        [
            queue("accounts", hours=Hours(tz="America/New_York", weekly=NEW_YORK_WEEKDAYS), **accounts),
            queue("general", typical_wait_s=60, targets=[Target(kind="phone", number="+15005550006")]),
            queue("spanish", languages=["es"]),
            queue("vip", tiers=["gold"], typical_wait_s=10),
        ],
        [],
        "general",
    )


def test_the_recommended_queue_takes_the_call_when_open_with_its_typical_wait() -> None:
    router = small_router(targets=[SIP_WITH_PASSWORD, Target(kind="phone", number="+15005550011")])
    decision = router.route(
        make_package(trigger="explicit_request"), CallMetadata(), TUESDAY_NOON, ScheduleAvailability()
    )
    assert decision.queue == "accounts"
    assert decision.mode == "transfer"
    assert decision.expected_wait_s == 120
    assert [t.describe() for t in decision.targets] == ["sip:desk@pbx.example", "+15005550011"]
    assert decision.availability.open and decision.availability.source == "schedule"
    assert decision.checked == {"accounts": "within opening hours"}
    assert any("accounts" in r and "explicit_request" in r for r in decision.reasons), decision.reasons
    assert "accounts can take the call now" in decision.reasons[-1]
    assert_well_formed(decision)


def test_the_decision_dumps_to_json_with_targets_but_without_their_passwords() -> None:
    router = small_router(targets=[SIP_WITH_PASSWORD])
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NOON, ScheduleAvailability())
    data = json.loads(json.dumps(decision.model_dump(mode="json")))
    assert data["targets"] == [{"kind": "sip", "uri": "sip:desk@pbx.example", "headers": {}, "username": "bot"}]
    assert "hunter2-secret" not in json.dumps(data)
    assert data["availability"] == {
        "open": True,
        "available_agents": None,
        "expected_wait_s": 120,
        "source": "schedule",
        "detail": "within opening hours",
    }
    assert data["queue"] == "accounts" and data["mode"] == "transfer" and data["expected_wait_s"] == 120


@pytest.mark.parametrize("when_closed", ["callback", "voicemail", "ticket"])
def test_a_closed_queue_falls_back_to_its_when_closed_mode_without_a_wait(when_closed: str) -> None:
    router = small_router(overflow=Overflow(when_closed=when_closed, when_busy="callback"))  # type: ignore[arg-type]
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NIGHT, ScheduleAvailability())
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("accounts", when_closed, None)
    assert not decision.availability.open
    assert f"accounts is closed (outside opening hours (America/New_York)) -> {when_closed}" in decision.reasons
    assert_well_formed(decision)


@pytest.mark.parametrize("when_busy", ["callback", "voicemail", "ticket"])
def test_no_free_agents_falls_back_to_the_when_busy_mode(when_busy: str) -> None:
    router = small_router(overflow=Overflow(when_closed="ticket", when_busy=when_busy))  # type: ignore[arg-type]
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NOON, FixedAvailability({"accounts": NOBODY}))
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("accounts", when_busy, None)
    assert any("accounts is busy (0 free)" in r for r in decision.reasons)
    assert_well_formed(decision)


@pytest.mark.parametrize(
    ("expected_wait_s", "mode"), [(599, "transfer"), (600, "transfer"), (601, "voicemail"), (3600, "voicemail")]
)
def test_an_expected_wait_over_max_wait_falls_back_to_the_when_busy_mode(expected_wait_s: int, mode: str) -> None:
    router = small_router(max_wait_s=600, overflow=Overflow(when_busy="voicemail"))
    busy = QueueAvailability(open=True, available_agents=2, expected_wait_s=expected_wait_s, detail="queue")
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NOON, FixedAvailability({"accounts": busy}))
    assert decision.mode == mode
    assert decision.expected_wait_s == (expected_wait_s if mode == "transfer" else None)
    assert_well_formed(decision)


def test_a_typical_wait_over_max_wait_is_busy_even_by_the_schedule() -> None:
    router = small_router(typical_wait_s=900, max_wait_s=300, overflow=Overflow(when_busy="ticket"))
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NOON, ScheduleAvailability())
    assert (decision.mode, decision.expected_wait_s) == ("ticket", None)


def test_a_closed_queue_overflows_to_its_to_queue_when_that_queue_is_open() -> None:
    router = small_router(overflow=Overflow(when_closed="ticket", to_queue="general"))
    availability = FixedAvailability()
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NIGHT, availability)
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("general", "transfer", 60)
    assert availability.checked == ["accounts", "general"]
    assert set(decision.checked) == {"accounts", "general"}
    assert [t.describe() for t in decision.targets] == ["+15005550006"]
    assert any("overflow -> general" in r for r in decision.reasons)
    assert_well_formed(decision)


def test_the_to_queue_is_not_consulted_while_the_queue_itself_is_open() -> None:
    router = small_router(overflow=Overflow(to_queue="general"))
    availability = FixedAvailability()
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NOON, availability)
    assert decision.queue == "accounts"
    assert availability.checked == ["accounts"]


def test_a_closed_to_queue_leaves_the_original_queues_when_closed_mode() -> None:
    router = small_router(overflow=Overflow(when_closed="voicemail", to_queue="general"))
    availability = FixedAvailability({"general": CLOSED})
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NIGHT, availability)
    assert (decision.queue, decision.mode) == ("accounts", "voicemail")
    assert availability.checked == ["accounts", "general"]
    assert decision.checked["general"] == "closed for the test"
    assert_well_formed(decision)


def test_an_open_but_busy_to_queue_uses_that_queues_when_busy_mode() -> None:
    router = Router(
        [
            queue("accounts", hours=Hours(), overflow=Overflow(when_closed="ticket", to_queue="general")),
            queue("general", overflow=Overflow(when_busy="voicemail")),
        ],
        [],
        "general",
    )
    decision = router.route(make_package(), CallMetadata(), TUESDAY_NOON, FixedAvailability({"general": NOBODY}))
    assert (decision.queue, decision.mode) == ("general", "voicemail")
    assert decision.availability is NOBODY


def test_an_unknown_recommended_queue_goes_to_the_default_queue() -> None:
    decision = small_router().route(
        make_package(queue="no_such_desk"), CallMetadata(), TUESDAY_NOON, ScheduleAvailability()
    )
    assert decision.queue == "general"
    assert "no_such_desk" in decision.reasons[0]
    assert_well_formed(decision)


# --- rules ---------------------------------------------------------------------------------------------------

RULES = [
    RoutingRule(when=RuleMatch(category="distress"), queue="vip", why="distress first"),
    RoutingRule(when=RuleMatch(tier="gold", urgency="high"), queue="vip", why="urgent gold"),
    RoutingRule(when=RuleMatch(frustrated=True), queue="general", why="frustrated callers to general"),
    RoutingRule(when=RuleMatch(language="es"), queue="spanish", why="spanish speakers"),
    RoutingRule(when=RuleMatch(category="distress"), queue="general", why="never reached: an earlier rule wins"),
]


def rule_router() -> Router:
    return Router(
        [
            queue("accounts"),
            queue("general", languages=["en", "es"]),
            queue("spanish", languages=["es", "en"]),
            queue("vip", tiers=["gold"]),
        ],
        RULES,
        "general",
    )


@pytest.mark.parametrize(
    ("overrides", "meta", "expected", "why"),
    [
        ({"category": "distress"}, CallMetadata(tier="gold"), "vip", "distress first"),
        ({"category": "distress", "frustrated": True}, CallMetadata(tier="gold"), "vip", "distress first"),
        ({"urgency": "high"}, CallMetadata(tier="gold"), "vip", "urgent gold"),
        ({"urgency": "high", "frustrated": True}, CallMetadata(tier="silver"), "general", "frustrated callers"),
        ({"frustrated": True, "language": "es"}, CallMetadata(), "general", "frustrated callers"),
        ({"language": "es"}, CallMetadata(), "spanish", "spanish speakers"),
        ({"urgency": "normal"}, CallMetadata(tier="gold"), "accounts", None),
        ({}, CallMetadata(), "accounts", None),
    ],
    ids=[
        "category",
        "category-beats-frustrated",
        "tier-and-urgency",
        "tier-mismatch",
        "frustrated-beats-language",
        "language",
        "urgency-mismatch",
        "no-rule",
    ],
)
def test_the_first_matching_rule_wins_and_every_given_condition_must_match(
    overrides: dict[str, object], meta: CallMetadata, expected: str, why: str | None
) -> None:
    decision = rule_router().route(make_package(**overrides), meta, TUESDAY_NOON, ScheduleAvailability())
    assert decision.queue == expected
    rule_reasons = [r for r in decision.reasons if r.startswith("rule:")]
    if why is None:
        assert rule_reasons == []
    else:
        assert rule_reasons == [f"rule: {next(r.why for r in RULES if r.why.startswith(why))} -> {expected}"]
    assert_well_formed(decision)


def test_a_rule_on_frustrated_false_matches_only_calm_callers() -> None:
    router = Router(
        [queue("accounts"), queue("calm")],
        [RoutingRule(when=RuleMatch(frustrated=False), queue="calm", why="calm")],
        "accounts",
    )
    assert router.route(make_package(), CallMetadata(), TUESDAY_NOON, ScheduleAvailability()).queue == "calm"
    angry = make_package(frustrated=True)
    assert router.route(angry, CallMetadata(), TUESDAY_NOON, ScheduleAvailability()).queue == "accounts"


def test_a_rule_on_the_recommended_queue_trigger_and_region_routes_on_them() -> None:
    rule = RoutingRule(when=RuleMatch(queue="accounts", trigger="lockout", region="west"), queue="general", why="w")
    router = Router([queue("accounts"), queue("general")], [rule], "accounts")
    west = router.route(
        make_package(trigger="lockout"), CallMetadata(region="west"), TUESDAY_NOON, ScheduleAvailability()
    )
    east = router.route(
        make_package(trigger="lockout"), CallMetadata(region="east"), TUESDAY_NOON, ScheduleAvailability()
    )
    assert (west.queue, east.queue) == ("general", "accounts")


def test_a_language_the_queue_does_not_serve_moves_the_call_to_a_queue_that_serves_it() -> None:
    decision = small_router().route(make_package(language="es"), CallMetadata(), TUESDAY_NOON, ScheduleAvailability())
    assert decision.queue == "spanish"
    assert "language es: accounts does not serve it -> spanish" in decision.reasons
    assert_well_formed(decision)


def test_a_language_no_queue_serves_leaves_the_recommended_queue() -> None:
    decision = small_router().route(make_package(language="de"), CallMetadata(), TUESDAY_NOON, ScheduleAvailability())
    assert decision.queue == "accounts"


def test_a_tier_the_queue_does_not_serve_moves_the_call_to_the_default_queue() -> None:
    router = small_router()
    silver = router.route(make_package(queue="vip"), CallMetadata(tier="silver"), TUESDAY_NOON, ScheduleAvailability())
    gold = router.route(make_package(queue="vip"), CallMetadata(tier="gold"), TUESDAY_NOON, ScheduleAvailability())
    assert (silver.queue, gold.queue) == ("general", "vip")
    assert "tier silver is not served by vip -> general" in silver.reasons
    assert_well_formed(silver)


def test_a_queue_serving_every_tier_keeps_any_tier() -> None:
    decision = small_router().route(make_package(), CallMetadata(tier="bronze"), TUESDAY_NOON, ScheduleAvailability())
    assert decision.queue == "accounts"


# --- Router on the Larkspur pack -----------------------------------------------------------------------------


def larkspur_router() -> Router:
    return Router(list(PACK.queues), list(PACK.routing_rules), PACK.default_queue)


def test_larkspur_distress_goes_to_the_nurse_line_even_at_3_am_on_sunday() -> None:
    package = make_package(queue="appointments", category="distress", trigger="distress_marker", urgency="high")
    decision = larkspur_router().route(package, CallMetadata(), utc(2026, 3, 15, 7), ScheduleAvailability())
    assert (decision.queue, decision.mode) == ("nurse_line", "transfer")  # 03:00 EDT
    assert decision.targets == (Target(kind="phone", number="+15005550008"),)
    assert "rule: a possible emergency always goes to the nurse line -> nurse_line" in decision.reasons
    assert_well_formed(decision)


def test_larkspur_routes_by_trigger_so_a_plain_request_for_a_person_reaches_the_topics_queue() -> None:
    package = make_package(queue="orders", category="distress", trigger="explicit_request")
    decision = larkspur_router().route(package, CallMetadata(), TUESDAY_NOON, ScheduleAvailability())
    assert decision.queue == "orders"  # user distress by the article's taxonomy, but not an emergency


def test_larkspur_billing_on_saturday_is_closed_and_offers_a_callback() -> None:
    package = make_package(queue="billing", category="risk_compliance", trigger="billing_dispute", urgency="high")
    decision = larkspur_router().route(package, CallMetadata(), utc(2026, 3, 7, 15), ScheduleAvailability())
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("billing", "callback", None)
    assert any("billing is closed" in r and "America/New_York" in r for r in decision.reasons)
    assert_well_formed(decision)


def test_larkspur_billing_on_a_weekday_morning_transfers_to_the_sip_desk() -> None:
    package = make_package(queue="billing", category="risk_compliance", trigger="billing_dispute")
    decision = larkspur_router().route(package, CallMetadata(), utc(2026, 3, 3, 15), ScheduleAvailability())
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("billing", "transfer", 180)
    assert decision.targets[0].kind == "sip"


def test_larkspur_retention_after_hours_opens_a_ticket() -> None:
    package = make_package(queue="retention", category="high_value", trigger="cancellation")
    decision = larkspur_router().route(package, CallMetadata(), TUESDAY_NIGHT, ScheduleAvailability())
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("retention", "ticket", None)
    assert_well_formed(decision)


def test_larkspur_gold_member_with_a_risk_issue_goes_to_the_priority_desk() -> None:
    package = make_package(queue="accounts", category="risk_compliance", trigger="account_change")
    decision = larkspur_router().route(package, CallMetadata(tier="gold"), TUESDAY_NOON, ScheduleAvailability())
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("priority", "transfer", 20)
    assert "rule: gold members with a risk issue go to the priority desk -> priority" in decision.reasons
    assert_well_formed(decision)


def test_larkspur_priority_on_sunday_overflows_to_general_while_general_is_open() -> None:
    package = make_package(queue="accounts", category="risk_compliance", trigger="account_change")
    decision = larkspur_router().route(package, CallMetadata(tier="gold"), utc(2026, 3, 15, 16), ScheduleAvailability())
    assert (decision.queue, decision.mode, decision.expected_wait_s) == ("general", "transfer", 60)  # 12:00 EDT
    assert set(decision.checked) == {"priority", "general"}


def test_larkspur_silver_member_with_a_risk_issue_stays_on_the_recommended_queue() -> None:
    package = make_package(queue="accounts", category="risk_compliance", trigger="account_change")
    decision = larkspur_router().route(package, CallMetadata(tier="silver"), TUESDAY_NOON, ScheduleAvailability())
    assert (decision.queue, decision.mode) == ("accounts", "transfer")


def test_larkspur_spanish_caller_goes_to_the_multilingual_desk() -> None:
    decision = larkspur_router().route(
        make_package(queue="orders", language="es"), CallMetadata(), TUESDAY_NOON, ScheduleAvailability()
    )
    assert (decision.queue, decision.mode) == ("multilingual", "transfer")


@settings(max_examples=150, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    queue_name=st.sampled_from([q.name for q in PACK.queues] + ["unknown_queue"]),
    category=st.sampled_from(CATEGORIES),
    trigger=st.sampled_from(["explicit_request", "distress_marker", "billing_dispute", "no_input"]),
    language=st.sampled_from(["en", "es", "fr", "de"]),
    tier=st.sampled_from([None, "gold", "silver"]),
    urgency=st.sampled_from(["low", "normal", "high"]),
    frustrated=st.booleans(),
    agents=st.sampled_from([None, 0, 1, 5]),
)
def test_every_larkspur_decision_is_explained_and_serialisable(
    moment: datetime,
    queue_name: str,
    category: Category,
    trigger: str,
    language: str,
    tier: str | None,
    urgency: str,
    frustrated: bool,
    agents: int | None,
) -> None:
    package = make_package(
        queue=queue_name, category=category, trigger=trigger, language=language, urgency=urgency, frustrated=frustrated
    )

    class Live:
        def check(self, queue: QueueConfig, now: datetime) -> QueueAvailability:
            state = ScheduleAvailability().check(queue, now)
            return QueueAvailability(
                open=state.open, available_agents=agents, expected_wait_s=state.expected_wait_s, detail=state.detail
            )

    decision = larkspur_router().route(package, CallMetadata(tier=tier), moment, Live())
    assert decision.queue in {q.name for q in PACK.queues}
    assert decision.queue in decision.checked
    assert_well_formed(decision)
    if trigger == "distress_marker":
        assert decision.queue in ("nurse_line", "multilingual")


def test_a_caller_in_distress_stays_at_the_always_open_nurse_line_whatever_their_language() -> None:
    from dialogs.pack import load_pack

    pack = load_pack()
    router = Router(list(pack.queues), list(pack.routing_rules), pack.default_queue)
    package = make_package(queue="nurse_line", category="distress", trigger="distress_marker").model_copy(
        update={"language": "es"}
    )
    three_am = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    decision = router.route(package, CallMetadata(), three_am, ScheduleAvailability())
    assert (decision.queue, decision.mode) == ("nurse_line", "transfer")
    assert any("safety first" in reason for reason in decision.reasons)


def test_a_rule_can_route_on_the_product_area() -> None:
    router = Router(
        [queue("accounts"), queue("general"), queue("pharmacy_desk")],
        [RoutingRule(when=RuleMatch(area="pharmacy"), queue="pharmacy_desk", why="pharmacy questions")],
        "general",
    )
    package = make_package().model_copy(update={"product_area": "pharmacy"})
    decision = router.route(package, CallMetadata(), TUESDAY_NOON, ScheduleAvailability())
    assert decision.queue == "pharmacy_desk" and any("pharmacy questions" in r for r in decision.reasons)
