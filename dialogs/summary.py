"""From a call's dialog state to the handoff package an agent receives, and how the package is briefed.

The package is strict data (`dialogs.package`); what the agent hears (the whisper) and the fixed words of
the summary come from the pack's `agent` words, so a pack in another language briefs in its own language.
"""

from __future__ import annotations

from dialogs.pack import AgentWords, BotPack
from dialogs.package import WHISPER_MAX_WORDS, EscalationReason, HandoffPackage, TranscriptTurn
from dialogs.redaction import redact
from dialogs.state import CallState
from dialogs.wording import spoken_list


def build_package(pack: BotPack, state: CallState, reason: EscalationReason, queue: str) -> HandoffPackage:
    """The strict summary: issue, goal, facts, what was tried, why, where, how urgent, and the transcript."""
    intent = pack.find_intent(state.intent) if state.intent else None
    words = state.first_words(state.intent)
    topic = next((t for t in pack.topics if t.word == state.topic_only and t.intent == state.intent), None)
    if topic is not None and topic.issue:  # the caller named a topic, no more: claim no more
        issue = topic.issue + "."
        goal = pack.agent.goal_unknown
    elif intent is not None:
        issue = intent.description + "."
        goal = intent.goal or intent.description
    else:
        issue = pack.agent.topic_unknown
        goal = pack.agent.goal_unknown
    if words:
        issue += "\n" + pack.agent.in_callers_words.format(words=_clip(redact(words)))
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
        urgency="high" if state.urgency == "high" else "normal",
        frustrated=state.frustrated,
        language=state.language or pack.language,
        authentication=state.authentication,
        caller=state.caller,
        transcript=tuple(state.turns),
    )


def sending_what(pack: BotPack, state: CallState) -> str:
    """What the caller is told goes with the transfer, in plain words."""
    words = pack.words
    parts = [words.sending_said]
    for kind in state.facts:
        phrase = words.sending.get(kind)
        if phrase and phrase not in parts:
            parts.append(phrase)
    if state.attempted:
        parts.append(words.sending_tried)
    return spoken_list(parts, words.and_)


def fallback_package(
    pack: BotPack,
    call_sid: str,
    *,
    caller: str | None,
    transcript: tuple[TranscriptTurn, ...],
    reason: EscalationReason,
    queue: str | None = None,
) -> HandoffPackage:
    """A package for when the conversation itself broke (a dropped stream, an unreadable call, a bug).

    The call still goes to a person, with whatever the caller said so far.
    """
    said = [turn.text for turn in transcript if turn.speaker == "caller"]
    return HandoffPackage(
        handoff_id=f"{call_sid}-fallback",
        call_sid=call_sid,
        primary_issue=_clip(said[0], 300) if said else pack.agent.fallback_issue,
        user_goal=pack.agent.fallback_goal,
        reason=reason,
        recommended_queue=queue or pack.default_queue,
        language=pack.language,
        caller=caller,
        transcript=transcript,
    )


BRIEF_ISSUE_WORDS = 6


def brief(package: HandoffPackage, words: AgentWords) -> str:
    """The short whisper of a conference transfer (about 5 s): the queue, the flags and the issue's first
    words. The agent reads the rest on the console's card while the caller is joined."""
    queue = package.recommended_queue.replace("_", " ")
    said = [words.brief_incoming.format(queue=queue[:1].upper() + queue[1:])]
    if package.urgency == "high":
        said.append(words.urgent)
    if package.frustrated:
        said.append(words.frustrated)
    issue = _sentence(package.primary_issue.splitlines()[0]).split()
    if len(issue) > BRIEF_ISSUE_WORDS:
        issue = [*issue[: BRIEF_ISSUE_WORDS - 1], issue[BRIEF_ISSUE_WORDS - 1].rstrip(".,;") + "..."]
    return " ".join([*said, *issue])


def whisper(package: HandoffPackage, words: AgentWords) -> str:
    """What the agent hears before the call is bridged: the essentials, speakable in about 20 s.

    The queue, flags, facts and reason always fit; the caller's issue is shortened to what is left.
    """
    head = [words.incoming.format(queue=package.recommended_queue.replace("_", " "))]
    if package.urgency == "high":
        head.append(words.urgent)
    if package.frustrated:
        head.append(words.frustrated)
    tail = []
    shown = [fact for fact in package.key_facts if fact.source != "caller_id"][:3]  # the agent sees caller ID
    facts = [f"{fact.kind.replace('_', ' ')} {_spell_digits(fact.value)}" for fact in shown]
    if facts:
        tail.append(words.facts.format(facts="; ".join(facts)))
    tail.append(words.reason.format(reason=_sentence(package.reason.detail)))
    fixed = len(" ".join(head + tail).split())
    room = max(WHISPER_MAX_WORDS - fixed - 1, 6)
    issue = _sentence(package.primary_issue).split()
    if len(issue) > room:
        issue = [*issue[: room - 1], issue[room - 1].rstrip(".,;") + "..."]
    said = " ".join([*head, words.issue, *issue, *tail]).split()
    if len(said) > WHISPER_MAX_WORDS:  # very long facts or reason: keep the front
        said = [*said[: WHISPER_MAX_WORDS - 1], said[WHISPER_MAX_WORDS - 1].rstrip(".,;") + "."]
    return " ".join(said)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "?", "!")) else text + "."


def _spell_digits(value: str) -> str:
    """Digits read one by one ("1 2 3 4"), so a text-to-speech engine does not say "twelve thirty-four"."""
    return " ".join(value) if value.isdigit() else value


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
