"""Handoff analytics from the store: the figures the review cycle starts from (containment, handoff rate,
completion, outcomes, time to a person, abandonment, transfer-to-resolution, repeat contact, the agents'
feedback).

The queries are plain SQLAlchemy Core, so the same code runs on SQLite and PostgreSQL; the arithmetic is a pure
function of the rows (`figures`), tested on hand-computed data. A window is [since, until) on when the call
came in; repeat contact looks past `until` as far as it needs (24 h, 7 days).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from telephony.store.models import Call, Callback, DialAttempt, Event, Handoff, Review, Voicemail, WrapUp
from telephony.store.transactions import Transactions, require_aware

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
BRIDGE_EVENTS = ("whisper_accepted", "bridged")  # the agent took the call (the first of these is the bridge)
DECISION_EVENT = "decision"  # stamped by the store's clock, as the bridge is


@dataclass(frozen=True)
class CallFact:
    call_sid: str
    caller: str | None
    at: datetime


@dataclass(frozen=True)
class HandoffFact:
    handoff_id: str
    call_sid: str
    caller: str | None
    at: datetime
    category: str
    trigger: str
    queue: str
    status: str
    decided_at: datetime | None
    bridged_at: datetime | None
    outcomes: tuple[str, ...]
    callback_status: str | None
    voicemail_recorded: bool | None
    resolved_at: datetime | None
    had_to_repeat: bool | None
    summary_rating: int | None
    wrong_queue: bool | None
    verdict: str | None = None  # the reviewer's: avoidable or necessary


@dataclass(frozen=True)
class Facts:
    """Everything the figures are computed from, for one window."""

    since: datetime
    until: datetime
    calls: list[CallFact]
    later_calls: list[CallFact]  # calls from `until` to a week after: for repeat contact only
    handoffs: list[HandoffFact]


@dataclass
class Figures:
    """The analytics of one window. Rates are 0..1 (None with nothing to divide by); times are seconds."""

    calls: int = 0
    handoffs: int = 0
    handoffs_per_100_calls: float | None = None
    containment_24h: float | None = None
    containment_7d: float | None = None
    by_category: dict[str, int] = field(default_factory=dict)
    by_trigger: dict[str, int] = field(default_factory=dict)
    by_queue: dict[str, int] = field(default_factory=dict)
    per_day: dict[str, float] = field(default_factory=dict)  # ISO date -> handoffs per 100 calls
    completion: float | None = None
    outcome_mix: dict[str, int] = field(default_factory=dict)
    callback_completion: float | None = None
    voicemail_completion: float | None = None
    time_to_human_p50_s: float | None = None
    time_to_human_p90_s: float | None = None
    abandonment: float | None = None
    transfer_to_resolution_p50_s: float | None = None
    transfer_to_resolution_p90_s: float | None = None
    repeat_contact_7d: float | None = None
    restatement_rate: float | None = None
    summary_rating_mean: float | None = None
    wrong_queue_rate: float | None = None
    avoidable_rate: float | None = None  # avoidable over reviewed handoffs
    reviewed: int = 0


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    cuts = statistics.quantiles(sorted(values), n=100, method="inclusive")
    return round(cuts[int(q * 100) - 1], 1)


def _called_again(caller: str | None, at: datetime, within: timedelta, calls: list[CallFact]) -> bool:
    return caller is not None and any(c.caller == caller and at < c.at <= at + within for c in calls)


def figures(facts: Facts) -> Figures:
    """The window's analytics from its facts (pure: no database)."""
    out = Figures(calls=len(facts.calls), handoffs=len(facts.handoffs))
    everyone = facts.calls + facts.later_calls
    handed = {h.call_sid for h in facts.handoffs}
    bot_only = [c for c in facts.calls if c.call_sid not in handed]
    out.handoffs_per_100_calls = round(100 * len(facts.handoffs) / len(facts.calls), 2) if facts.calls else None
    for within, name in ((DAY, "containment_24h"), (WEEK, "containment_7d")):
        kept = [c for c in bot_only if not _called_again(c.caller, c.at, within, everyone)]
        setattr(out, name, _rate(len(kept), len(facts.calls)))
    hs = facts.handoffs
    out.by_category = dict(Counter(h.category for h in hs))
    out.by_trigger = dict(Counter(h.trigger for h in hs))
    out.by_queue = dict(Counter(h.queue for h in hs))
    calls_by_day = Counter(c.at.date().isoformat() for c in facts.calls)
    handoffs_by_day = Counter(h.at.date().isoformat() for h in hs)
    out.per_day = {day: round(100 * handoffs_by_day[day] / n, 2) for day, n in sorted(calls_by_day.items())}
    attempted = [h for h in hs if h.outcomes]
    out.completion = _rate(sum(1 for h in attempted if h.bridged_at is not None), len(attempted))
    out.outcome_mix = dict(Counter(o for h in hs for o in h.outcomes))
    for status in ("callback", "voicemail", "caller_hung_up", "ticket"):
        out.outcome_mix[f"handoff_{status}"] = sum(1 for h in hs if h.status == status)
    callbacks = [h.callback_status for h in hs if h.callback_status is not None]
    out.callback_completion = _rate(sum(1 for s in callbacks if s == "done"), len(callbacks))
    messages = [h.voicemail_recorded for h in hs if h.voicemail_recorded is not None]
    out.voicemail_completion = _rate(sum(1 for m in messages if m), len(messages))
    waits = [(h.bridged_at - h.decided_at).total_seconds() for h in hs if h.bridged_at and h.decided_at]
    out.time_to_human_p50_s, out.time_to_human_p90_s = _quantile(waits, 0.5), _quantile(waits, 0.9)
    out.abandonment = _rate(sum(1 for h in hs if h.status == "caller_hung_up"), len(hs))
    resolving = [(h.resolved_at - h.bridged_at).total_seconds() for h in hs if h.resolved_at and h.bridged_at]
    out.transfer_to_resolution_p50_s = _quantile(resolving, 0.5)
    out.transfer_to_resolution_p90_s = _quantile(resolving, 0.9)
    out.repeat_contact_7d = _rate(sum(1 for h in hs if _called_again(h.caller, h.at, WEEK, everyone)), len(hs))
    wrapped = [h for h in hs if h.summary_rating is not None]
    out.restatement_rate = _rate(sum(1 for h in wrapped if h.had_to_repeat), len(wrapped))
    ratings = [h.summary_rating for h in wrapped if h.summary_rating is not None]
    out.summary_rating_mean = round(statistics.fmean(ratings), 2) if ratings else None
    out.wrong_queue_rate = _rate(sum(1 for h in wrapped if h.wrong_queue), len(wrapped))
    verdicts = [h.verdict for h in hs if h.verdict is not None]
    out.reviewed = len(verdicts)
    out.avoidable_rate = _rate(sum(1 for v in verdicts if v == "avoidable"), len(verdicts))
    return out


def _epoch(value: object) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if isinstance(value, int | float) else None


class AnalyticsRecords(Transactions):
    """The rows behind the analytics; part of `Store`."""

    def analytics_facts(self, since: datetime, until: datetime, queue: str | None = None) -> Facts:
        """The window's calls and handoffs (only `queue`'s handoffs when given), with what became of each."""
        require_aware(since, "since")
        require_aware(until, "until")
        with self._tx("analytics", read_only=True) as s:
            calls = [
                CallFact(sid, caller, at)
                for sid, caller, at in s.execute(
                    select(Call.call_sid, Call.caller, Call.created_at).where(
                        Call.created_at >= since, Call.created_at < until
                    )
                )
            ]
            later = [
                CallFact(sid, caller, at)
                for sid, caller, at in s.execute(
                    select(Call.call_sid, Call.caller, Call.created_at).where(
                        Call.created_at >= until, Call.created_at < until + WEEK
                    )
                )
            ]
            query = (
                select(Handoff, Call.caller, Call.decision, Call.created_at)
                .join(Call, Call.call_sid == Handoff.call_sid)
                .where(Call.created_at >= since, Call.created_at < until)
            )
            if queue is not None:
                query = query.where(Handoff.queue == queue)
            rows = s.execute(query).all()
            sids = [h.call_sid for h, _, _, _ in rows]
            outcomes: dict[str, list[str]] = {}
            for sid, outcome in s.execute(
                select(DialAttempt.call_sid, DialAttempt.outcome)
                .where(DialAttempt.call_sid.in_(sids))
                .order_by(DialAttempt.call_sid, DialAttempt.attempt_no)
            ):
                outcomes.setdefault(sid, []).append(outcome)
            bridged: dict[str, datetime] = {}
            decided_events: dict[str, datetime] = {}
            for event_sid, kind, at in s.execute(
                select(Event.call_sid, Event.kind, Event.created_at)
                .where(Event.call_sid.in_(sids), Event.kind.in_((*BRIDGE_EVENTS, DECISION_EVENT)))
                .order_by(Event.created_at, Event.id)
            ):
                if event_sid is not None:
                    (decided_events if kind == DECISION_EVENT else bridged).setdefault(event_sid, at)
            callbacks = {
                sid: status
                for sid, status in s.execute(
                    select(Callback.call_sid, Callback.status).where(Callback.call_sid.in_(sids))
                )
            }
            voicemails = {
                sid: url is not None
                for sid, url in s.execute(
                    select(Voicemail.call_sid, Voicemail.recording_url).where(Voicemail.call_sid.in_(sids))
                )
            }
            wrapups = {w.call_sid: w for w in s.scalars(select(WrapUp).where(WrapUp.call_sid.in_(sids)))}
            verdicts = {
                sid: verdict
                for sid, verdict in s.execute(select(Review.call_sid, Review.verdict).where(Review.call_sid.in_(sids)))
            }
        handoffs = []
        for handoff, caller, decision, called_at in rows:  # a handoff dates from its call
            w = wrapups.get(handoff.call_sid)
            decided = decided_events.get(handoff.call_sid) or (
                _epoch(decision.get("decided_at")) if isinstance(decision, dict) else None
            )
            handoffs.append(HandoffFact(
                handoff.handoff_id, handoff.call_sid, caller, called_at, handoff.category, handoff.trigger,
                handoff.queue, handoff.status, decided, bridged.get(handoff.call_sid),
                tuple(outcomes.get(handoff.call_sid, ())), callbacks.get(handoff.call_sid),
                voicemails.get(handoff.call_sid),
                w.created_at if w is not None and w.resolved else None,
                w.had_to_repeat if w is not None else None, w.summary_rating if w is not None else None,
                w.wrong_queue if w is not None else None, verdicts.get(handoff.call_sid),
            ))  # fmt: skip
        return Facts(since, until, calls, later, handoffs)
