"""Escalation policies: small pure functions that each look at one kind of signal and may decide a handoff.

`first()` asks them in priority order (safety, then what the caller asked for, then risk, then how the
conversation is going) and returns the first decision. Each decision names its trigger and category, so the
handoff package says exactly why the bot stepped aside. Weak signals (one urgency word, one low-confidence
turn) never decide on their own; they shape the state the manager acts on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dialogs.pack import BotPack
from dialogs.package import EscalationReason
from dialogs.state import CallState
from dialogs.understanding import Reading

STRONG = 0.6  # an intent score this high is taken at its word
SELF_SERVICE_BEFORE_DISPUTE = ("order_status", "refund_request")


@dataclass(frozen=True)
class Decision:
    """A policy's verdict: hand off for `reason`, or (`ask_routing`) ask the one routing question first."""

    reason: EscalationReason
    queue: str | None = None
    urgency: str | None = None
    say_first: str | None = None
    ask_routing: bool = False
    intent: str | None = None
    language: str | None = None
    frustrated: bool = False
    prior_attempt: str | None = None
    signals: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """What a policy sees: the pack, the call so far, this utterance and its recognition confidence."""

    pack: BotPack
    state: CallState
    reading: Reading
    confidence: float

    @property
    def strong_intent(self) -> str | None:
        best = self.reading.best
        return best.intent if best is not None and best.score >= STRONG else None

    @property
    def heard_clearly(self) -> bool:
        return self.confidence >= self.pack.policy.low_asr_confidence


def distress(turn: Turn) -> Decision | None:
    """A health emergency or a caller in crisis goes to a person at once, whatever else is going on."""
    words = turn.reading.markers.get("distress")
    if not words:
        return None
    return Decision(
        EscalationReason(
            category="distress",
            trigger="distress_marker",
            detail=f"The caller said something that may be an emergency ({words[0]}).",
        ),
        queue=turn.pack.policy.distress_queue,
        urgency="high",
        say_first="distress",
        signals={"markers": words},
    )


def other_language(turn: Turn) -> Decision | None:
    """A caller speaking another language is not kept in an English conversation."""
    language = turn.reading.language
    if language is None:
        return None
    return Decision(
        EscalationReason(
            category="capability_gap",
            trigger="other_language",
            detail=f"The caller is speaking another language ({language}).",
        ),
        queue=turn.pack.policy.language_queue,
        say_first="language_handoff",
        language=language,
    )


def risk(turn: Turn) -> Decision | None:
    """Disputes, cancellations, security, account changes, legal threats and payments are never self-served."""
    name = turn.strong_intent
    if name is None or not turn.heard_clearly:
        return None
    intent = turn.pack.intent(name)
    state = turn.state
    if intent.escalate is None:
        return _high_value_refund(turn, name)
    escalate = intent.escalate
    signals: dict[str, object] = {"intent": name, "score": turn.reading.best.score if turn.reading.best else 0}
    if turn.reading.has("person_request"):
        signals["also_asked_for_person"] = True
    if state.intent in SELF_SERVICE_BEFORE_DISPUTE and escalate.trigger == "billing_dispute":
        before = turn.pack.intent(state.intent).description.lower()
        reason = EscalationReason(
            category="risk_compliance",
            trigger="intent_switch_to_dispute",
            detail=f"The call started as {before} and turned into a billing dispute.",
        )
        return Decision(reason, queue=intent.queue, urgency="high", intent=name, signals=signals)
    if name == "insurance_coverage" and ("appointment" in state.work or state.intent == "appointment_reschedule"):
        reason = EscalationReason(
            category="workflow_exception",
            trigger="policy_exception",
            detail="Rescheduling hinges on whether the caller's new insurance covers the visit; "
            "coverage decisions are outside self-service.",
        )
        return Decision(reason, queue=intent.queue, intent=name, signals=signals)
    reason = EscalationReason(
        category=escalate.category,
        trigger=escalate.trigger,
        detail=f"{intent.description}. Policy: a person handles this.",
    )
    return Decision(
        reason, queue=intent.queue, urgency=escalate.urgency, say_first=escalate.say, intent=name, signals=signals
    )


def _high_value_refund(turn: Turn, name: str) -> Decision | None:
    total = turn.state.work.get("order_total")
    if name != "refund_request" or total is None or total < turn.pack.policy.high_value_amount:
        return None
    reason = EscalationReason(
        category="high_value",
        trigger="high_value_refund",
        detail=f"A refund on an order of ${total:.2f}, above the self-service limit.",
    )
    return Decision(reason, queue=turn.pack.intent(name).queue, intent=name, signals={"order_total": total})


def explicit_request(turn: Turn) -> Decision | None:
    """Asked for a person: hand off now, after at most one routing question when we don't know the topic."""
    words = turn.reading.markers.get("person_request")
    if not words:
        return None
    state = turn.state
    intent = turn.strong_intent if turn.strong_intent and turn.pack.intent(turn.strong_intent).handling else None
    known = state.intent or intent or turn.pack.topic_in(turn.reading.normalised)
    reason = EscalationReason(
        category="capability_gap", trigger="explicit_request", detail=f"The caller asked for a person ({words[0]})."
    )
    signals: dict[str, object] = {"markers": words, "known_intent": known or ""}
    if known is None and not state.routing_asked and state.waiting != "routing":
        return Decision(reason, ask_routing=True, signals=signals)
    queue = turn.pack.intent(known).queue if known else None
    return Decision(reason, queue=queue, intent=known if known != state.intent else None, signals=signals)


def prior_attempt(turn: Turn) -> Decision | None:
    """A caller who already tried the self-service step is not asked to try it again."""
    name = turn.strong_intent
    if name is None or not turn.heard_clearly:
        return None
    if not turn.reading.has("did_not_work") or name in turn.state.intents_seen:
        return None
    intent = turn.pack.intent(name)
    if intent.handling is None or intent.handling.kind not in ("tool", "answer"):
        return None
    reason = EscalationReason(
        category="capability_gap",
        trigger="repeated_failure",
        detail=f"The caller already tried to fix it before calling, and it still fails: {intent.description.lower()}.",
    )
    return Decision(
        reason,
        queue=intent.queue,
        intent=name,
        say_first="already_tried",
        prior_attempt=turn.reading.text,
        signals={"markers": turn.reading.markers.get("did_not_work")},
    )


def frustration(turn: Turn) -> Decision | None:
    """Frustration after something already failed: stop trying, offer a person at once."""
    words = turn.reading.markers.get("frustration")
    state = turn.state
    if not words:
        return None
    failed = sum(state.failures.values()) + state.clarifications + state.low_confidence_run + len(state.steps_given)
    if not failed and not state.frustrated:
        return None
    reason = EscalationReason(
        category="distress",
        trigger="negative_sentiment",
        detail=f"The caller is frustrated ({words[0]}) after the bot's attempt did not help.",
    )
    return Decision(reason, say_first="frustrated_offer", frustrated=True, signals={"markers": words, "failed": failed})


POLICIES: tuple[Callable[[Turn], Decision | None], ...] = (
    distress,
    other_language,
    risk,
    prior_attempt,
    explicit_request,
    frustration,
)


def first(pack: BotPack, state: CallState, reading: Reading, confidence: float) -> Decision | None:
    """The highest-priority policy that fires on this turn, or None."""
    turn = Turn(pack, state, reading, confidence)
    for policy in POLICIES:
        decision = policy(turn)
        if decision is not None:
            return decision
    return None
