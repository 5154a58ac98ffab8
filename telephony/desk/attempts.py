"""What every transfer attempt leaves behind, whichever way the agent was rung (`<Dial>` or a conference leg):
its typed outcome stored once, the dial-outcome count, the time to a person, and the words for a caller nobody
could take."""

from __future__ import annotations

from dialogs.pack import BotPack
from dialogs.package import HandoffPackage
from dialogs.routing import Target
from telephony.calls.metrics import Metrics
from telephony.calls.records import AttemptNote, CallRecord
from telephony.desk.callbacks import Callbacks
from telephony.desk.ledger import Ledger
from telephony.desk.outcomes import Outcome
from telephony.twilio import twiml
from telephony.twilio.twiml import Urls


def duration_s(value: str | None) -> int:
    """A count Twilio sends as text (a call's seconds); anything unreadable or beyond a day is 0, never a traceback."""
    text = (value or "0").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return 0
    return min(int(text), 24 * 3600)


async def record_attempt(
    ledger: Ledger,
    metrics: Metrics,
    record: CallRecord,
    package: HandoffPackage,
    attempt: int,
    target: Target,
    *,
    status: str,
    outcome: Outcome,
    leg_sid: str | None,
    duration: str | None,
) -> bool:
    """Keep one attempt's outcome (once, however often Twilio repeats the callback); True the first time."""
    call_sid = record.call_sid
    detail = {"attempt": attempt, "status": status, "outcome": outcome.value}
    first = await ledger.first_time(call_sid, "dial_status", f"{call_sid}:dial:{attempt}", detail)
    if first:
        metrics.dial_outcome(outcome.value)  # a bridge is timed at the key press, not here
        record.progress.attempts.append(
            AttemptNote(attempt=attempt, target=target.describe(), dial_status=status, outcome=outcome.value)
        )
        if ledger.store is not None:
            await ledger.write(
                call_sid, ledger.store.record_dial_attempt, call_sid, package.handoff_id, attempt, target.kind,
                target.describe(), dial_call_sid=leg_sid or None, outcome=outcome.value, dial_status=status,
                duration_s=duration_s(duration),
            )  # fmt: skip
    record.progress.dial_status, record.progress.last_outcome = status, outcome.value
    return first


def reached_person(metrics: Metrics, record: CallRecord, bridged_at: float) -> None:
    """Count the time to a person: from the decision's wall-clock instant to the bridge."""
    decision = record.decision
    if decision is not None and decision.decided_at is not None:
        metrics.time_to_human(bridged_at - decision.decided_at)


def nobody_took_it(
    pack: BotPack, callbacks: Callbacks, record: CallRecord, package: HandoffPackage, urls: Urls, language: str | None
) -> str:
    """One clear sentence for a caller nobody could take, then a callback (1) or a message (2)."""
    queue = callbacks.queue_of(record)
    team = (queue.name if queue else package.recommended_queue).replace("_", " ")
    words = pack.after_stream
    return twiml.gather_key_or_redirect(
        [words.nobody_available.format(team=team), words.callback_or_message],
        urls.of("/twilio/fallback-choice"),
        urls.of("/twilio/fallback-choice", Digits="timeout"),
        language,
    )
