"""Every `<Dial action>` callback as a typed outcome, and the defined next step for each.

- bridged: done;
- declined, busy, no_answer, failed, voicemail_reached: the queue's next target; when none is left, the
  caller is offered a callback or voicemail;
- caller_hung_up_before_bridge: cancel the agent leg, schedule a callback.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one transfer attempt ended; every one has a next step (`next_step`)."""

    BRIDGED = "bridged"
    DECLINED = "declined"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    VOICEMAIL_REACHED = "voicemail_reached"
    CALLER_HUNG_UP = "caller_hung_up_before_bridge"


class NextStep(StrEnum):
    DONE = "done"  # the call was bridged and has ended
    NEXT_TARGET = "next_target"  # try the queue's next target
    OFFER_CALLBACK_OR_VOICEMAIL = "offer_callback_or_voicemail"  # nobody left to try: tell the caller plainly
    SCHEDULE_CALLBACK = "schedule_callback"  # the caller is gone: call them back, with the package


_BY_STATUS = {
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
    "canceled": Outcome.CALLER_HUNG_UP,
}


def outcome_of(
    dial_status: str, *, accepted: bool, whisper: bool, caller_gone: bool, answered_by: str | None
) -> Outcome:
    """Map Twilio's DialCallStatus (and what we saw of the whisper) to a typed outcome."""
    if caller_gone and not accepted:
        return Outcome.CALLER_HUNG_UP
    if answered_by and answered_by.startswith("machine"):
        return Outcome.VOICEMAIL_REACHED
    if dial_status in ("completed", "answered"):
        return Outcome.BRIDGED if accepted or not whisper else Outcome.DECLINED
    return _BY_STATUS.get(dial_status, Outcome.FAILED)


def next_step(outcome: Outcome, attempt: int, targets: int) -> NextStep:
    """What to do after an attempt: the defined next step for each outcome."""
    if outcome is Outcome.BRIDGED:
        return NextStep.DONE
    if outcome is Outcome.CALLER_HUNG_UP:
        return NextStep.SCHEDULE_CALLBACK
    if attempt + 1 < targets:
        return NextStep.NEXT_TARGET
    return NextStep.OFFER_CALLBACK_OR_VOICEMAIL
