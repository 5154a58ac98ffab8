"""Where a handoff goes, and whether a person can take it now: queues, rules, hours and availability.

The router is pure: given the handoff package, what the call told us (tier, region), the time, and an
availability snapshot per queue, it picks a queue and a mode (live transfer, callback, voicemail or a
ticket), and writes down every reason. Availability itself is I/O (a schedule needs only the clock; a
TaskRouter workspace needs Twilio's API), so it sits behind the `Availability` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from dialogs.package import HandoffPackage

HandoffMode = Literal["transfer", "callback", "voicemail", "ticket"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """Who picks up: a phone number (whisper + press 1), a SIP URI (with X- headers), a Twilio Client
    identity (with parameters), or a TaskRouter workflow (the package as task attributes)."""

    kind: Literal["phone", "sip", "client", "taskrouter"]
    number: str | None = None
    uri: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    identity: str | None = None
    workflow_sid: str | None = None
    username: str | None = None
    password: str | None = Field(None, exclude=True, repr=False)  # never stored, logged or served

    @model_validator(mode="after")
    def _has_address(self) -> Target:
        needed = {"phone": "number", "sip": "uri", "client": "identity", "taskrouter": "workflow_sid"}[self.kind]
        if not getattr(self, needed):
            raise ValueError(f"a {self.kind} target needs `{needed}`")
        if self.kind == "sip" and not (self.uri or "").startswith("sip:"):
            raise ValueError("a sip target's uri must start with sip:")
        bad = [h for h in self.headers if not h.lower().startswith("x-")]
        if bad:
            raise ValueError(f"SIP headers must start with X- (got {', '.join(bad)})")
        return self

    @model_serializer(mode="wrap")
    def _without_blanks(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Stored and served without the fields this kind of target does not use."""
        data: dict[str, object] = handler(self)
        return {k: v for k, v in data.items() if v is not None}

    def describe(self) -> str:
        return {"phone": self.number, "sip": self.uri, "client": f"client:{self.identity}",
                "taskrouter": f"workflow {self.workflow_sid}"}[self.kind] or self.kind  # fmt: skip


class Hours(_Strict):
    """Opening hours in a time zone: per weekday "HH:MM-HH:MM" (absent = closed), and holidays (closed)."""

    tz: str = "UTC"
    weekly: dict[str, str] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)
    always_open: bool = False

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("weekly")
    @classmethod
    def _valid_days(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r}; use {', '.join(DAYS)}")
            _span(span)
        return value

    def open_at(self, moment: datetime) -> bool:
        if self.always_open:
            return True
        local = moment.astimezone(ZoneInfo(self.tz))
        if local.date() in self.holidays:
            return False
        span = self.weekly.get(DAYS[local.weekday()])
        if span is None:
            return False
        start, end = _span(span)
        return start <= local.time() < end


def _span(text: str) -> tuple[time, time]:
    halves = [part.strip() for part in text.split("-")]
    if len(halves) != 2 or not all(len(h) == 5 and h[2] == ":" and h.replace(":", "").isdigit() for h in halves):
        raise ValueError(f"hours must look like 08:00-20:00, got {text!r} (local to the queue's tz, no offset)")
    try:
        start, end = (time.fromisoformat(h) for h in halves)
    except ValueError as exc:
        raise ValueError(f"hours must look like 08:00-20:00, got {text!r}") from exc
    if end <= start:
        raise ValueError(f"hours end before they start: {text!r}")
    return start, end


class Overflow(_Strict):
    """What happens when nobody can take the call now."""

    when_closed: Literal["callback", "voicemail", "ticket"] = "callback"
    when_busy: Literal["callback", "voicemail", "ticket"] = "callback"
    to_queue: str | None = Field(None, description="try this queue first, if it is open")


class QueueConfig(_Strict):
    """A queue: who it serves, where it rings, when it is open, and what happens when it cannot answer."""

    name: str
    description: str
    languages: list[str] = Field(default_factory=lambda: ["en"])
    tiers: list[str] = Field(default_factory=list, description="customer tiers served; empty = all")
    targets: list[Target] = Field(default_factory=list, description="tried in order; none = the default number")
    hours: Hours = Field(default_factory=lambda: Hours(always_open=True))
    max_wait_s: int = Field(600, ge=0)
    typical_wait_s: int | None = Field(None, ge=0, description="expected wait to tell callers, when nothing better")
    overflow: Overflow = Field(default_factory=Overflow)
    task_queue_sid: str | None = Field(None, description="TaskRouter queue whose statistics say who is free")


class RuleMatch(_Strict):
    """Conditions on the call's metadata; every given field must match."""

    category: str | None = None
    trigger: str | None = None
    queue: str | None = None
    area: str | None = None
    language: str | None = None
    tier: str | None = None
    region: str | None = None
    urgency: str | None = None
    frustrated: bool | None = None
    authentication: str | None = None


class RoutingRule(_Strict):
    """If the call matches `when`, send it to `queue` (first matching rule wins)."""

    when: RuleMatch
    queue: str
    why: str


class QueueAvailability(_Strict):
    """What we know right now about a queue's capacity."""

    open: bool
    available_agents: int | None = None
    expected_wait_s: int | None = None
    source: str = "schedule"
    detail: str = ""


class Availability(Protocol):
    """The check that runs before a live person is promised."""

    def check(self, queue: QueueConfig, now: datetime) -> QueueAvailability: ...


class ScheduleAvailability:
    """Availability from the configured hours alone: open or closed, and the queue's typical wait."""

    def check(self, queue: QueueConfig, now: datetime) -> QueueAvailability:
        is_open = queue.hours.open_at(now)
        detail = "within opening hours" if is_open else f"outside opening hours ({queue.hours.tz})"
        return QueueAvailability(open=is_open, expected_wait_s=queue.typical_wait_s, source="schedule", detail=detail)


@dataclass(frozen=True)
class CallMetadata:
    """What the call itself tells routing (from caller ID and TwiML parameters)."""

    tier: str | None = None
    region: str | None = None


class RoutingDecision(_Strict):
    """Where the handoff goes, how, and why; stored with the call as it is (targets without their passwords)."""

    queue: str
    mode: HandoffMode
    targets: tuple[Target, ...] = ()
    expected_wait_s: int | None = None
    reasons: tuple[str, ...] = ()
    availability: QueueAvailability = Field(default_factory=lambda: QueueAvailability(open=True))
    checked: dict[str, str] = Field(default_factory=dict)


class Router:
    """Picks the queue and the mode for a handoff; pure given the availability it is handed."""

    def __init__(self, queues: list[QueueConfig], rules: list[RoutingRule], default_queue: str) -> None:
        self.queues = {q.name: q for q in queues}
        self.rules = rules
        self.default_queue = default_queue

    def route(
        self, package: HandoffPackage, meta: CallMetadata, now: datetime, availability: Availability
    ) -> RoutingDecision:
        reasons: list[str] = []
        queue = self.queues.get(package.recommended_queue) or self.queues[self.default_queue]
        reasons.append(f"the dialog recommended {package.recommended_queue} ({package.reason.trigger})")
        rule = self._matching_rule(package, meta)
        if rule is not None:
            queue = self.queues[rule.queue]
            reasons.append(f"rule: {rule.why} -> {rule.queue}")
        if package.language not in queue.languages and package.reason.category == "distress":
            reasons.append(f"language {package.language}: kept at {queue.name}, safety first (add an interpreter)")
        elif package.language not in queue.languages:
            speaking = next((q for q in self.queues.values() if package.language in q.languages), None)
            if speaking is not None:
                reasons.append(f"language {package.language}: {queue.name} does not serve it -> {speaking.name}")
                queue = speaking
        if meta.tier and queue.tiers and meta.tier not in queue.tiers:
            reasons.append(f"tier {meta.tier} is not served by {queue.name} -> {self.default_queue}")
            queue = self.queues[self.default_queue]
        checked: dict[str, str] = {}
        state = availability.check(queue, now)
        checked[queue.name] = state.detail
        busy = state.open and (state.available_agents == 0 or (state.expected_wait_s or 0) > queue.max_wait_s)
        if (not state.open or busy) and queue.overflow.to_queue:
            other = self.queues[queue.overflow.to_queue]
            other_state = availability.check(other, now)
            checked[other.name] = other_state.detail
            other_busy = other_state.available_agents == 0 or (other_state.expected_wait_s or 0) > other.max_wait_s
            if other_state.open and (not busy or not other_busy):  # busy here: only to a queue that is not
                why = "closed" if not state.open else "busy"
                reasons.append(f"{queue.name} is {why} ({state.detail}); overflow -> {other.name}")
                queue, state = other, other_state
        if not state.open:
            mode: HandoffMode = queue.overflow.when_closed
            reasons.append(f"{queue.name} is closed ({state.detail}) -> {mode}")
        elif state.available_agents == 0 or (state.expected_wait_s or 0) > queue.max_wait_s:
            mode = queue.overflow.when_busy
            reasons.append(f"{queue.name} is busy ({state.detail}) -> {mode}")
        else:
            mode = "transfer"
            reasons.append(f"{queue.name} can take the call now ({state.detail})")
        return RoutingDecision(
            queue=queue.name,
            mode=mode,
            targets=tuple(queue.targets),
            expected_wait_s=state.expected_wait_s if mode == "transfer" else None,
            reasons=tuple(reasons),
            availability=state,
            checked=checked,
        )

    def _matching_rule(self, package: HandoffPackage, meta: CallMetadata) -> RoutingRule | None:
        facts = {
            "category": package.reason.category, "trigger": package.reason.trigger,
            "queue": package.recommended_queue, "area": package.product_area, "language": package.language,
            "tier": meta.tier,
            "region": meta.region, "urgency": package.urgency, "frustrated": package.frustrated,
            "authentication": package.authentication,
        }  # fmt: skip
        for rule in self.rules:
            wanted = rule.when.model_dump(exclude_none=True)
            if all(facts.get(key) == value for key, value in wanted.items()):
                return rule
        return None
