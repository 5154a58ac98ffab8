"""Every TwiML document the server answers with, built with the twilio library's `VoiceResponse`.

Pure Twilio vocabulary: each builder takes plain values (URLs, numbers, the words to say) and returns the
XML. What a handoff puts into a target (SIP headers, client parameters, task attributes) and what a caller
or an agent hears are decided by the desk and the bot pack, not here.

Rule for every transfer: nothing follows `<Dial>` or `<Enqueue>`. With an `action` URL Twilio would not
reach it anyway, and elsewhere a trailing `<Pause>` or `<Hangup>` has cut bridged calls short; what happens
after the dial is decided by the action callback instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.twiml.voice_response import Client, Connect, Dial, Enqueue, Gather, VoiceResponse

PARAMETER_MAX_CHARS = 499  # Twilio: name and value of each <Parameter> together under 500 characters
GATHER_TIMEOUT_S = 6
VOICEMAIL_MAX_S = 120


@dataclass(frozen=True)
class Urls:
    """The absolute callback URLs of one call (TwiML given through REST needs absolute URLs)."""

    base: str
    call_sid: str

    def of(self, path: str, **query: str | int) -> str:
        return f"{self.base}{path}?{urlencode({'call': self.call_sid, **query})}"


def _response(say_first: str | None, language: str | None) -> VoiceResponse:
    response = VoiceResponse()
    if say_first:
        response.say(say_first, language=language)
    return response


def connect_stream(stream_url: str, action_url: str, parameters: Mapping[str, str]) -> str:
    """`<Connect action><Stream url>` with the call's data as `<Parameter>`s: the start of every call."""
    response = VoiceResponse()
    connect = Connect(action=action_url, method="POST")
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        room = PARAMETER_MAX_CHARS - len(name)
        if room > 0 and value:
            stream.parameter(name=name, value=value[:room])
    response.append(connect)
    return str(response)


@dataclass(frozen=True)
class Ring:
    """How one transfer rings: the `<Dial action>`, the whisper the agent hears first (none: no whisper),
    the caller ID and ring time, and what the caller hears before the dial."""

    action_url: str
    whisper_url: str | None
    caller_id: str | None
    timeout_s: int
    say_first: str | None = None
    language: str | None = None


def _dial(ring: Ring) -> tuple[VoiceResponse, Dial]:
    response = _response(ring.say_first, ring.language)
    dial = Dial(
        action=ring.action_url, method="POST", answer_on_bridge=True, timeout=ring.timeout_s, caller_id=ring.caller_id
    )
    return response, dial


def dial_number(number: str, ring: Ring, *, machine_detection: bool = False) -> str:
    """Transfer to a phone: the agent hears the whisper before the call is bridged (a machine is detected)."""
    response, dial = _dial(ring)
    if ring.whisper_url:
        detection = "Enable" if machine_detection else None
        dial.number(number, url=ring.whisper_url, method="POST", machine_detection=detection)
    else:
        dial.number(number)
    response.append(dial)
    return str(response)


def dial_sip(uri: str, ring: Ring, *, username: str | None = None, password: str | None = None) -> str:
    """Transfer to a SIP endpoint; the URI carries its X- headers."""
    response, dial = _dial(ring)
    dial.sip(uri, url=ring.whisper_url, method="POST", username=username, password=password)
    response.append(dial)
    return str(response)


def dial_client(identity: str, parameters: Mapping[str, str], ring: Ring) -> str:
    """Transfer to a Twilio Client identity, the handoff's data as `<Parameter>`s."""
    response, dial = _dial(ring)
    client = Client(url=ring.whisper_url, method="POST")
    client.identity(identity)
    for name, value in parameters.items():
        client.parameter(name=name, value=value[: PARAMETER_MAX_CHARS - len(name)])
    dial.append(client)
    response.append(dial)
    return str(response)


def enqueue_task(
    workflow_sid: str, attributes: str, action_url: str, *, say_first: str | None = None, language: str | None = None
) -> str:
    """Hand the caller to TaskRouter: `<Enqueue workflowSid>` with the task's attributes (JSON)."""
    response = _response(say_first, language)
    enqueue = Enqueue(workflow_sid=workflow_sid, action=action_url, method="POST")
    enqueue.task(attributes)
    response.append(enqueue)
    return str(response)


def gather_key(prompts: list[str], action_url: str, *, after: str | None = None, language: str | None = None) -> str:
    """Say `prompts` while waiting for one key, posted to `action_url`; with no key, say `after` and hang up."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=action_url, method="POST", timeout=GATHER_TIMEOUT_S)
    for text in prompts:
        gather.say(text, language=language)
    response.append(gather)
    if after:
        response.say(after, language=language)
    response.hangup()
    return str(response)


def gather_key_or_redirect(prompts: list[str], action_url: str, redirect_url: str, language: str | None = None) -> str:
    """Say `prompts` while waiting for one key; with no key, go on at `redirect_url` (a default choice)."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=action_url, method="POST", timeout=GATHER_TIMEOUT_S)
    for text in prompts:
        gather.say(text, language=language)
    response.append(gather)
    response.redirect(redirect_url, method="POST")
    return str(response)


def bridge() -> str:
    """An empty response: on a whisper leg it ends the whisper, and the call is bridged."""
    return str(VoiceResponse())


def record_message(action_url: str, status_url: str, *, intro: str | None = None, language: str | None = None) -> str:
    """Record a message (up to two minutes, # to finish); the action and the status callback both carry the call."""
    response = _response(intro, language)
    response.record(
        action=action_url,
        method="POST",
        max_length=VOICEMAIL_MAX_S,
        finish_on_key="#",
        play_beep=True,
        recording_status_callback=status_url,
        recording_status_callback_method="POST",
    )
    return str(response)


def dial_with_detection(
    number: str, *, answer_url: str, action_url: str, caller_id: str, timeout_s: int, say_first: str | None = None
) -> str:
    """Dial a callee with answering-machine detection; `answer_url` decides what a person or a machine gets."""
    response = _response(say_first, None)
    dial = Dial(action=action_url, caller_id=caller_id, timeout=timeout_s)
    dial.number(number, url=answer_url, machine_detection="Enable")
    response.append(dial)
    return str(response)


def say_and_hang_up(text: str, language: str | None = None) -> str:
    """A last sentence, then the end of the call."""
    response = VoiceResponse()
    response.say(text, language=language)
    response.hangup()
    return str(response)


def hang_up() -> str:
    """End the call (a bridged call that finished, or a call already gone)."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def conference_wait(
    room: str, *, action_url: str, events_url: str, wait_url: str | None = None, say_first: str | None = None,
    language: str | None = None,
) -> str:  # fmt: skip
    """The caller waits in a conference of their own until an agent joins (a warm transfer that briefs the
    agent in parallel). The conference starts only when the agent enters; when the caller leaves, it ends, so
    no agent is left in an empty room. `events_url` hears who joins and leaves."""
    response, dial = _response(say_first, language), Dial(action=action_url, method="POST")
    dial.conference(
        room, start_conference_on_enter=False, end_conference_on_exit=True, beep=False,
        wait_url=wait_url or "", wait_method="POST", status_callback=events_url, status_callback_method="POST",
        status_callback_event="join leave end",
    )  # fmt: skip
    response.append(dial)
    return str(response)


def conference_join(room: str) -> str:
    """The agent who pressed 1 enters the caller's conference and starts it: the two are bridged."""
    response, dial = VoiceResponse(), Dial()
    dial.conference(room, start_conference_on_enter=True, end_conference_on_exit=True, beep=False)
    response.append(dial)
    return str(response)


def hold(text: str, *, pause_s: int = 20, language: str | None = None) -> str:
    """A conference's wait audio: one sentence, then quiet (allowed verbs are Say, Play, Pause, Redirect)."""
    response = VoiceResponse()
    response.say(text, language=language)
    response.pause(length=pause_s)
    return str(response)
