"""How a handoff reaches each kind of target, with its package: a phone hears the whisper, a SIP endpoint gets
X- headers, a Twilio Client gets parameters, and TaskRouter gets the whole package as task attributes.
Each stays within Twilio's limits, whatever the caller said.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

from dialogs.package import HandoffPackage
from dialogs.routing import Target
from telephony.twilio import twiml
from telephony.twilio.twiml import Urls

SIP_HEADERS_MAX = 1024  # Twilio: the headers on a <Sip> URI must be under 1024 characters
TASK_ATTRIBUTES_MAX = 16_000


@dataclass(frozen=True)
class TransferConfig:
    """How transfers ring: the number used when a queue has no targets, the caller ID agents see, ring time."""

    default_number: str
    caller_id: str | None = None
    ring_timeout_s: int = 20
    conference: bool = False  # warm transfers ring the agent at the decision and bridge in a conference


def transfer_twiml(
    target: Target,
    attempt: int,
    package: HandoffPackage,
    urls: Urls,
    config: TransferConfig,
    *,
    say_first: str | None = None,
    language: str | None = None,
) -> str:
    """Dial one target. Phone: whisper + press 1; SIP: X- headers; Client: parameters; TaskRouter: task."""
    if target.kind == "taskrouter":
        action_url = urls.of("/twilio/enqueue-status")
        attributes = task_attributes(package)
        return twiml.enqueue_task(
            target.workflow_sid or "", attributes, action_url, say_first=say_first, language=language
        )
    ring = twiml.Ring(
        action_url=urls.of("/twilio/dial-status", attempt=attempt),
        whisper_url=urls.of("/twilio/whisper", attempt=attempt),
        caller_id=config.caller_id,
        timeout_s=config.ring_timeout_s,
        say_first=say_first,
        language=language,
    )
    if target.kind == "phone":
        return twiml.dial_number(target.number or "", ring, machine_detection=True)
    if target.kind == "sip":
        return twiml.dial_sip(sip_uri(target, package), ring, username=target.username, password=target.password)
    return twiml.dial_client(target.identity or "", client_parameters(package), ring)


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
