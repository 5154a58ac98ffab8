"""What an agent hears when their leg answers, for every transfer: the summary and press 1, unless a machine
answered (no briefing into a voicemail) or the caller has already gone."""

from __future__ import annotations

from collections.abc import Callable

from dialogs.pack import AgentWords
from dialogs.package import HandoffPackage
from telephony.calls.records import CallRecord
from telephony.desk.ledger import Ledger
from telephony.twilio import twiml


def briefing(
    record: CallRecord | None,
    attempt: int,
    answered_by: str,
    words: AgentWords,
    *,
    summary: Callable[[HandoffPackage, AgentWords], str],
    press: str,
    accept_url: str,
    language: str | None,
) -> str:
    """The TwiML for an agent leg that answered: `summary` of the package, then `press` (a key gather)."""
    decision = record.decision if record is not None else None
    if record is None or decision is None or decision.package is None:
        return twiml.say_and_hang_up(words.no_summary, language)
    if answered_by.startswith("machine"):  # the agent's voicemail
        record.progress.answered_by[attempt] = answered_by
        return twiml.hang_up()
    if record.progress.caller_gone:
        return twiml.say_and_hang_up(words.caller_gone, language)
    said = summary(decision.package, words)
    record.progress.whisper = said
    return twiml.gather_key([said, press], accept_url, after=words.no_key, language=language)


async def brief_agent(
    ledger: Ledger,
    call_sid: str,
    attempt: int,
    answered_by: str,
    words: AgentWords,
    *,
    summary: Callable[[HandoffPackage, AgentWords], str],
    press: str,
    accept_url: str,
    language: str | None,
) -> str:
    """`briefing` for the call's freshest record, which is then stored: who answered decides the attempt's outcome,
    and the leg's end may reach another instance."""
    record = await ledger.find(call_sid)
    answer = briefing(
        record, attempt, answered_by, words, summary=summary, press=press, accept_url=accept_url, language=language
    )
    if record is not None:
        await ledger.save(record)
    return answer
