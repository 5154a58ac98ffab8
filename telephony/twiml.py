"""TwiML documents the server answers with, built with the twilio library's `VoiceResponse`.

Rule for every transfer: nothing follows `<Dial>`. With an `action` URL Twilio would not reach it anyway,
and elsewhere a trailing `<Pause>` or `<Hangup>` has cut bridged calls short; what happens after the
dial is decided by the `<Dial action>` callback instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

PARAMETER_MAX_CHARS = 499  # Twilio: name and value of each <Parameter> together under 500 characters


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


def dial_number(
    number: str,
    *,
    whisper_url: str | None,
    action_url: str,
    caller_id: str | None,
    timeout_s: int,
    say_first: str | None = None,
) -> str:
    """Transfer to a phone: the agent hears the whisper at `whisper_url` before the call is bridged."""
    response = VoiceResponse()
    if say_first:
        response.say(say_first)
    dial = Dial(action=action_url, method="POST", answer_on_bridge=True, timeout=timeout_s, caller_id=caller_id)
    if whisper_url:
        dial.number(number, url=whisper_url, method="POST")
    else:
        dial.number(number)
    response.append(dial)
    return str(response)


def say_and_hang_up(text: str) -> str:
    """A last sentence, then the end of the call."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def hang_up() -> str:
    """End the call (a bridged call that finished, or a call already gone)."""
    response = VoiceResponse()
    response.hangup()
    return str(response)
