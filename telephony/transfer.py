"""Carrying out a handoff in TwiML: dial the queue's targets in turn, whisper to the agent, and turn each
`<Dial action>` callback into a typed outcome with a defined next step.

Nothing ever follows `<Dial>` or `<Enqueue>`: with an `action` URL Twilio would not reach it, and elsewhere
a trailing verb has cut bridged calls short. What happens next is decided when the action callback arrives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, urlencode

from twilio.twiml.voice_response import Client, Dial, Enqueue, Gather, VoiceResponse

from dialogs.package import HandoffPackage
from dialogs.routing import Target
from telephony.twiml import say_and_hang_up

SIP_HEADERS_MAX = 1024  # Twilio: the headers on a <Sip> URI must be under 1024 characters
PARAMETER_MAX = 499
TASK_ATTRIBUTES_MAX = 16_000


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
    return {
        "busy": Outcome.BUSY,
        "no-answer": Outcome.NO_ANSWER,
        "failed": Outcome.FAILED,
        "canceled": Outcome.CALLER_HUNG_UP,
    }.get(dial_status, Outcome.FAILED)


def next_step(outcome: Outcome, attempt: int, targets: int) -> NextStep:
    """What to do after an attempt: the defined next step for each outcome."""
    if outcome is Outcome.BRIDGED:
        return NextStep.DONE
    if outcome is Outcome.CALLER_HUNG_UP:
        return NextStep.SCHEDULE_CALLBACK
    if attempt + 1 < targets:
        return NextStep.NEXT_TARGET
    return NextStep.OFFER_CALLBACK_OR_VOICEMAIL


@dataclass(frozen=True)
class Urls:
    """The absolute callback URLs of one call (REST-updated TwiML needs absolute URLs)."""

    base: str
    call_sid: str

    def of(self, path: str, **query: str | int) -> str:
        return f"{self.base}{path}?{urlencode({'call': self.call_sid, **query})}"


def transfer_twiml(
    target: Target,
    attempt: int,
    package: HandoffPackage,
    urls: Urls,
    *,
    caller_id: str | None,
    timeout_s: int,
    say_first: str | None = None,
) -> str:
    """Dial one target. Phone: whisper + press 1; SIP: X- headers; Client: parameters; TaskRouter: task."""
    response = VoiceResponse()
    if say_first:
        response.say(say_first)
    action = urls.of("/twilio/dial-status", attempt=attempt)
    whisper = urls.of("/twilio/whisper", attempt=attempt)
    if target.kind == "taskrouter":
        enqueue = Enqueue(workflow_sid=target.workflow_sid, action=urls.of("/twilio/enqueue-status"), method="POST")
        enqueue.task(task_attributes(package))
        response.append(enqueue)
        return str(response)
    dial = Dial(action=action, method="POST", answer_on_bridge=True, timeout=timeout_s, caller_id=caller_id)
    if target.kind == "phone":
        dial.number(target.number, url=whisper, method="POST", machine_detection="Enable")
    elif target.kind == "sip":
        dial.sip(sip_uri(target, package), url=whisper, method="POST", username=target.username,
                 password=target.password)  # fmt: skip
    else:
        client = Client(url=whisper, method="POST")
        client.identity(target.identity)
        for name, value in client_parameters(package).items():
            client.parameter(name=name, value=value[: PARAMETER_MAX - len(name)])
        dial.append(client)
    response.append(dial)
    return str(response)


def short_summary(package: HandoffPackage, limit: int = 200) -> str:
    first_line = package.primary_issue.partition("\n")[0]
    text = f"{first_line} Reason: {package.reason.trigger}. Queue: {package.recommended_queue}."
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sip_uri(target: Target, package: HandoffPackage) -> str:
    """The target URI with the handoff id and a short summary as X- headers (URL-encoded, under 1024 chars)."""
    headers = {
        **target.headers,
        "X-Handoff-Id": package.handoff_id,
        "X-Handoff-Reason": f"{package.reason.category}/{package.reason.trigger}",
        "X-Handoff-Urgency": package.urgency,
        "X-Handoff-Summary": short_summary(package),
    }
    encoded = "&".join(f"{k}={quote(v, safe='')}" for k, v in headers.items())
    while len(encoded) >= SIP_HEADERS_MAX and headers["X-Handoff-Summary"]:
        headers["X-Handoff-Summary"] = headers["X-Handoff-Summary"][:-20]
        encoded = "&".join(f"{k}={quote(v, safe='')}" for k, v in headers.items())
    separator = "&" if "?" in (target.uri or "") else "?"
    return f"{target.uri}{separator}{encoded}"


def client_parameters(package: HandoffPackage) -> dict[str, str]:
    return {
        "handoff_id": package.handoff_id,
        "call_sid": package.call_sid,
        "reason": f"{package.reason.category}/{package.reason.trigger}",
        "queue": package.recommended_queue,
        "urgency": package.urgency,
        "summary": short_summary(package, 400),
    }


def task_attributes(package: HandoffPackage) -> str:
    """The whole package as TaskRouter task attributes (the transcript trimmed from the front if too long)."""
    data = package.model_dump(mode="json")
    data["type"] = "handoff"
    text = json.dumps(data, separators=(",", ":"))
    if len(text) <= TASK_ATTRIBUTES_MAX:
        return text
    turns = data["transcript"]
    sizes = [len(json.dumps(t, separators=(",", ":"))) + 1 for t in turns]
    excess = len(text) - TASK_ATTRIBUTES_MAX
    dropped = 0
    while dropped < len(turns) and excess > 0:  # drop the oldest turns, in one pass
        excess -= sizes[dropped]
        dropped += 1
    data["transcript"] = turns[dropped:]
    data["transcript_dropped_turns"] = dropped
    return json.dumps(data, separators=(",", ":"))


def whisper_twiml(package: HandoffPackage, accept_url: str) -> str:
    """What the agent hears before the call is bridged: the summary, then press 1 to take the call."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=accept_url, method="POST", timeout=6)
    gather.say(package.whisper())
    gather.say("Press 1 to take this call.")
    response.append(gather)
    response.say("No key pressed. Passing the call on.")
    response.hangup()
    return str(response)


def accept_twiml(digits: str, caller_gone: bool) -> str:
    """The agent's key: 1 bridges (an empty response ends the whisper); anything else passes the call on."""
    response = VoiceResponse()
    if caller_gone:
        response.say("The caller has hung up. We'll call them back with this summary.")
        response.hangup()
    elif digits != "1":
        response.hangup()
    return str(response)


def offer_callback_or_voicemail(urls: Urls, team: str) -> str:
    """Nobody could take the call: say so plainly, offer a callback (default) or a message."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=urls.of("/twilio/fallback-choice"), method="POST", timeout=6)
    gather.say(f"Sorry, nobody on our {team} team could take your call just now. Your details are saved.")
    gather.say("Press 1 and we'll call you back at this number. Press 2 to leave a message.")
    response.append(gather)
    response.redirect(urls.of("/twilio/fallback-choice", Digits="timeout"), method="POST")
    return str(response)


def voicemail_twiml(urls: Urls, intro: str | None = None) -> str:
    """Record a message; the action and the recording status callback both carry the call."""
    response = VoiceResponse()
    if intro:
        response.say(intro)
    response.record(
        action=urls.of("/twilio/voicemail"),
        method="POST",
        max_length=120,
        finish_on_key="#",
        play_beep=True,
        recording_status_callback=urls.of("/twilio/recording-status"),
        recording_status_callback_method="POST",
    )
    return str(response)


goodbye_twiml = say_and_hang_up  # one way to say a last sentence and end the call
