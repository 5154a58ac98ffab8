"""TwiML documents, checked by parsing them (TWILIO.md §3-5): the stream connect with its parameters under
Twilio's 500-character limit, transfers with nothing after <Dial>, the whisper, and the last words before a
hang-up.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.twilio.twiml import Ring, connect_stream, dial_number, hang_up, say_and_hang_up

STREAM_URL = "wss://bot.example.com/twilio/media"
ACTION_URL = "https://bot.example.com/twilio/stream-ended"


def parse(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    return root


def tags(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


# --- <Connect><Stream> ---------------------------------------------------------------------------------------


def test_connect_stream_has_connect_action_post_and_stream_url() -> None:
    root = parse(connect_stream(STREAM_URL, ACTION_URL, {"From": "+15551230001"}))
    assert tags(root) == ["Connect"]
    connect = root[0]
    assert connect.attrib == {"action": ACTION_URL, "method": "POST"}
    assert tags(connect) == ["Stream"]
    stream = connect[0]
    assert stream.get("url") == STREAM_URL


def test_connect_stream_has_one_parameter_per_non_empty_value() -> None:
    parameters = {"From": "+15551230001", "To": "+15559870000", "CallerName": "", "Note": 'a & b <c> "d"'}
    stream = parse(connect_stream(STREAM_URL, ACTION_URL, parameters)).find("Connect/Stream")
    assert stream is not None
    assert tags(stream) == ["Parameter"] * 3
    got = {p.get("name"): p.get("value") for p in stream}
    assert got == {"From": "+15551230001", "To": "+15559870000", "Note": 'a & b <c> "d"'}


def test_connect_stream_with_no_parameters_has_an_empty_stream() -> None:
    stream = parse(connect_stream(STREAM_URL, ACTION_URL, {})).find("Connect/Stream")
    assert stream is not None
    assert len(stream) == 0


@pytest.mark.parametrize(("name_len", "value_len"), [(4, 495), (4, 496), (4, 2000), (100, 400), (498, 10)])
def test_connect_stream_truncates_values_so_name_and_value_stay_under_500(name_len: int, value_len: int) -> None:
    name, value = "n" * name_len, "v" * value_len
    stream = parse(connect_stream(STREAM_URL, ACTION_URL, {name: value})).find("Connect/Stream")
    assert stream is not None
    [parameter] = stream
    kept = parameter.get("value") or ""
    assert len(name) + len(kept) < 500
    assert kept == value[: 499 - name_len]


xml_safe = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=700)


@given(parameters=st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,40}", fullmatch=True), xml_safe))
def test_connect_stream_parameters_are_prefixes_of_the_values_and_under_500(parameters: dict[str, str]) -> None:
    stream = parse(connect_stream(STREAM_URL, ACTION_URL, parameters)).find("Connect/Stream")
    assert stream is not None
    got = {p.get("name") or "": p.get("value") or "" for p in stream}
    assert set(got) == {name for name, value in parameters.items() if value}
    for name, kept in got.items():
        assert len(name) + len(kept) < 500
        assert kept and parameters[name].startswith(kept)


# --- <Dial><Number> ------------------------------------------------------------------------------------------


def dial(**overrides: object) -> ET.Element:
    kwargs: dict[str, object] = {
        "whisper_url": "https://bot.example.com/twilio/whisper/h1",
        "action_url": "https://bot.example.com/twilio/dial-ended/h1",
        "caller_id": "+15559870000",
        "timeout_s": 20,
    }
    kwargs.update(overrides)
    return parse(dial_number("+15005550006", Ring(**kwargs)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [{}, {"whisper_url": None}, {"caller_id": None}, {"say_first": "Connecting you now."}],
    ids=["whisper", "no-whisper", "no-caller-id", "say-first"],
)
def test_dial_number_puts_nothing_after_dial(overrides: dict[str, object]) -> None:
    root = dial(**overrides)
    assert tags(root)[-1] == "Dial"
    assert tags(root).count("Dial") == 1


def test_dial_number_sets_action_answer_on_bridge_timeout_and_caller_id() -> None:
    [dial_el] = dial(timeout_s=25)
    assert dial_el.get("action") == "https://bot.example.com/twilio/dial-ended/h1"
    assert dial_el.get("method") == "POST"
    assert dial_el.get("answerOnBridge") == "true"
    assert dial_el.get("timeout") == "25"
    assert dial_el.get("callerId") == "+15559870000"


def test_dial_number_without_caller_id_leaves_the_attribute_out() -> None:
    [dial_el] = dial(caller_id=None)
    assert "callerId" not in dial_el.attrib


def test_dial_number_with_a_whisper_url_puts_it_on_number_with_post() -> None:
    [dial_el] = dial()
    [number] = dial_el
    assert number.tag == "Number"
    assert (number.text or "").strip() == "+15005550006"
    assert number.attrib == {"url": "https://bot.example.com/twilio/whisper/h1", "method": "POST"}


def test_dial_number_without_a_whisper_url_has_a_bare_number() -> None:
    [dial_el] = dial(whisper_url=None)
    [number] = dial_el
    assert number.tag == "Number"
    assert number.attrib == {}
    assert (number.text or "").strip() == "+15005550006"


def test_dial_number_say_first_puts_say_before_dial() -> None:
    root = dial(say_first="I'm connecting you now.")
    assert tags(root) == ["Say", "Dial"]
    assert root[0].text == "I'm connecting you now."


# --- say and hang up ----------------------------------------------------------------------------------


def test_say_and_hang_up_is_say_then_hangup() -> None:
    root = parse(say_and_hang_up("Goodbye."))
    assert tags(root) == ["Say", "Hangup"]
    assert root[0].text == "Goodbye."
    assert len(root[1]) == 0 and root[1].attrib == {}


def test_hang_up_is_a_lone_hangup() -> None:
    assert tags(parse(hang_up())) == ["Hangup"]
