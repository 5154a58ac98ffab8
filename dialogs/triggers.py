"""Escalation policies: small pure functions that each look at one kind of signal and may decide a handoff.

`first()` asks them in priority order (safety, then what the caller asked for, then risk, then how the
conversation is going) and returns the first verdict. Each verdict names its policy, trigger and category,
so the handoff package says exactly why the bot stepped aside. Weak signals (one urgency word, one
low-confidence turn) never decide on their own; they shape the state the manager acts on. The domain (which
intents are risky, which switches and exceptions matter, what counts as high value) is the pack's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dialogs.pack import BotPack
from dialogs.package import USER_DISTRESS, EscalationReason
from dialogs.state import CallState, Waiting
from dialogs.understanding import Reading


@dataclass(frozen=True)
class PolicyVerdict:
    """A policy's verdict: hand off for `reason`, or (`ask_routing`) ask the one routing question first."""

    policy: str
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
        return best.intent if best is not None and best.score >= self.pack.policy.strong_intent_score else None

    @property
    def known_intent(self) -> str | None:
        """The intent the caller means, when the reading is at least fairly sure of it."""
        best = self.reading.best
        return best.intent if best is not None and best.score >= self.pack.policy.min_intent_score else None

    @property
    def heard_clearly(self) -> bool:
        return self.confidence >= self.pack.policy.low_asr_confidence


def distress(turn: Turn) -> PolicyVerdict | None:
    """A health emergency or a caller in crisis goes to a person at once, whatever else is going on."""
    words = turn.reading.markers.get("distress")
    if not words and turn.heard_clearly:  # the classifier's own hearing counts only on speech heard clearly
        words = turn.reading.markers.get("distress_heard")
    if not words:
        return None
    reason = EscalationReason(
        category="distress", trigger="distress_marker", detail=turn.pack.reason("distress_marker", marker=words[0])
    )
    return PolicyVerdict(
        "distress",
        reason,
        queue=turn.pack.policy.distress_queue,
        urgency="high",
        say_first="distress",
        signals={"markers": words},
    )


def other_language(turn: Turn) -> PolicyVerdict | None:
    """A caller speaking another language is not kept in a conversation in the pack's language."""
    language = turn.reading.language
    if language is None:
        return None
    reason = EscalationReason(
        category="capability_gap",
        trigger="other_language",
        detail=turn.pack.reason("other_language", language=language),
    )
    return PolicyVerdict(
        "other_language",
        reason,
        queue=turn.pack.policy.language_queue,
        say_first="language_handoff",
        language=language,
    )


def risk(turn: Turn) -> PolicyVerdict | None:
    """Risky intents (disputes, cancellations, security, ...) are never self-served; nor are the pack's intent
    switches, policy exceptions and high values."""
    name = turn.strong_intent
    if name is None or not turn.heard_clearly:
        return None
    pack, state = turn.pack, turn.state
    intent = pack.intent(name)
    signals: dict[str, object] = {"intent": name, "score": turn.reading.best.score if turn.reading.best else 0}
    if turn.reading.has("person_request"):
        signals["also_asked_for_person"] = True
    for switch in pack.policy.intent_switches:
        if name == switch.to and state.intent in switch.after:
            before = pack.intent(state.intent).description.lower()
            detail = pack.reason(switch.trigger, before=before)
            reason = EscalationReason(category=switch.category, trigger=switch.trigger, detail=detail)
            return PolicyVerdict(
                "intent_switch", reason, queue=intent.queue, urgency=switch.urgency, intent=name, signals=signals
            )
    for exception in pack.policy.exceptions:
        if name == exception.intent and state.intent in exception.during:
            reason = EscalationReason(
                category=exception.category, trigger=exception.trigger, detail=pack.reason(exception.trigger)
            )
            return PolicyVerdict("policy_exception", reason, queue=intent.queue, intent=name, signals=signals)
    if intent.escalate is None:
        return _high_value(turn, name)
    escalate = intent.escalate
    reason = EscalationReason(
        category=escalate.category, trigger=escalate.trigger, detail=pack.reason("risk", intent=intent.description)
    )
    return PolicyVerdict(
        "risk",
        reason,
        queue=intent.queue,
        urgency=escalate.urgency,
        say_first=escalate.say,
        intent=name,
        signals=signals,
    )


def _high_value(turn: Turn, name: str) -> PolicyVerdict | None:
    value = turn.state.value_at_stake
    rule = next((r for r in turn.pack.policy.high_value if r.intent == name), None)
    if rule is None or value is None or value < rule.above:
        return None
    detail = turn.pack.reason(rule.trigger, amount=value)
    reason = EscalationReason(category="high_value", trigger=rule.trigger, detail=detail)
    return PolicyVerdict(
        "high_value", reason, queue=turn.pack.intent(name).queue, intent=name, signals={"value_at_stake": value}
    )


def explicit_request(turn: Turn) -> PolicyVerdict | None:
    """Asked for a person: hand off now, after at most one routing question when we don't know the topic."""
    words = turn.reading.markers.get("person_request")
    if not words:
        return None
    pack, state = turn.pack, turn.state
    topic = turn.reading.topic
    known = state.intent or topic or pack.topic_in(turn.reading.normalised)
    detail = pack.reason("explicit_request", marker=words[0])
    reason = EscalationReason(category=USER_DISTRESS, trigger="explicit_request", detail=detail)
    signals: dict[str, object] = {"markers": words, "known_intent": known or ""}
    if known is None and not state.routing_asked and state.waiting is not Waiting.ROUTING_QUESTION:
        return PolicyVerdict("explicit_request", reason, ask_routing=True, signals=signals)
    about = pack.intent(known) if known else None
    queue = about.queue if about else None
    sure = known in (state.intent, turn.known_intent)  # not only guessed from the rest of the sentence
    if about is not None and about.escalate is not None and sure:  # about something only a person handles
        escalate = about.escalate
        detail = pack.reason("risk", intent=about.description)
        reason = EscalationReason(category=escalate.category, trigger=escalate.trigger, detail=detail)
    return PolicyVerdict(
        "explicit_request", reason, queue=queue, intent=known if known != state.intent else None, signals=signals
    )


def prior_attempt(turn: Turn) -> PolicyVerdict | None:
    """A caller who already tried the self-service step, and it failed, is not asked to try it again."""
    name = turn.known_intent
    if name is None or not turn.heard_clearly or name in turn.state.intents_seen:
        return None
    reading = turn.reading
    if not reading.has("tried") or not (reading.has("did_not_work") or reading.has("failure")):
        return None
    intent = turn.pack.intent(name)
    if intent.handling is None or intent.handling.kind not in ("tool", "answer", "booking"):
        return None
    detail = turn.pack.reason("prior_attempt", intent=intent.description.lower())
    reason = EscalationReason(category=USER_DISTRESS, trigger="repeated_failure", detail=detail)
    return PolicyVerdict(
        "prior_attempt",
        reason,
        queue=intent.queue,
        intent=name,
        say_first="already_tried",
        prior_attempt=reading.text,
        signals={"tried": reading.markers.get("tried"), "failed": reading.markers.get("did_not_work", [])},
    )


def frustration(turn: Turn) -> PolicyVerdict | None:
    """Frustration after something already failed: stop trying, offer a person at once."""
    words = turn.reading.markers.get("frustration")
    state = turn.state
    if not words:
        return None
    failed = sum(state.failures.values()) + state.clarifications + state.low_confidence_run + len(state.steps_given)
    if not failed and not state.frustrated:
        return None
    detail = turn.pack.reason("negative_sentiment", marker=words[0])
    reason = EscalationReason(category=USER_DISTRESS, trigger="negative_sentiment", detail=detail)
    return PolicyVerdict(
        "frustration",
        reason,
        say_first="frustrated_offer",
        frustrated=True,
        signals={"markers": words, "failed": failed},
    )


POLICIES: tuple[Callable[[Turn], PolicyVerdict | None], ...] = (
    distress,
    other_language,
    risk,
    prior_attempt,
    explicit_request,
    frustration,
)


ROUTING_ANSWER: tuple[Callable[[Turn], PolicyVerdict | None], ...] = (distress, risk)


def first(
    pack: BotPack,
    state: CallState,
    reading: Reading,
    confidence: float,
    policies: tuple[Callable[[Turn], PolicyVerdict | None], ...] = POLICIES,
) -> PolicyVerdict | None:
    """The highest-priority policy that fires on this turn, or None."""
    turn = Turn(pack, state, reading, confidence)
    for policy in policies:
        verdict = policy(turn)
        if verdict is not None:
            return verdict
    return None
