"""From a call's dialog state to the handoff package an agent receives."""

from __future__ import annotations

from dialogs.pack import BotPack
from dialogs.package import EscalationReason, HandoffPackage
from dialogs.redaction import redact
from dialogs.state import CallState
from dialogs.wording import spoken_list

FACT_WORDS = {
    "order_number": "your order number",
    "appointment": "your appointment details",
    "error_message": "the error you're seeing",
    "device": "your device",
    "phone": None,  # the agent sees the caller ID anyway; not worth saying
}


def build_package(pack: BotPack, state: CallState, reason: EscalationReason, queue: str) -> HandoffPackage:
    """The strict summary: issue, goal, facts, what was tried, why, where, how urgent, and the transcript."""
    intent = pack.intent(state.intent) if state.intent else None
    words = state.first_words(state.intent)
    if intent is not None:
        issue = intent.description + "."
        goal = intent.goal or intent.description
    else:
        issue = "Topic not yet known."
        goal = "Speak with a person."
    if words:
        issue += f'\nIn the caller\'s words: "{_clip(redact(words))}"'
    return HandoffPackage(
        handoff_id=f"{state.call_sid}-h1",
        call_sid=state.call_sid,
        primary_issue=issue,
        user_goal=goal,
        key_facts=tuple(state.facts.values()),
        actions_attempted=tuple(state.attempted),
        reason=reason,
        recommended_queue=queue,
        product_area=intent.area if intent is not None else "general",
        urgency="high" if state.urgency == "high" else "normal",  # type: ignore[arg-type]
        frustrated=state.frustrated,
        language=state.language or pack.language,
        authentication=state.authentication,  # type: ignore[arg-type]
        caller=state.caller,
        transcript=tuple(state.turns),
    )


def sending_what(state: CallState) -> str:
    """What the caller is told goes with the transfer, in plain words."""
    parts = ["what you told me"]
    for kind in state.facts:
        phrase = FACT_WORDS.get(kind)
        if phrase and phrase not in parts:
            parts.append(phrase)
    if state.attempted:
        parts.append("what we've already tried")
    return spoken_list(parts)


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
