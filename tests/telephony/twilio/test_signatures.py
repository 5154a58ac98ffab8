"""Who may talk to the server: X-Twilio-Signature on webhooks (twilio-python's test vectors and the security doc's
example, TWILIO.md §6), on the media-stream websocket upgrade (each URL form Twilio may sign), and the bearer token
that guards /api/*.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.server.auth import ApiTokenCheck
from telephony.twilio.signatures import TwilioSignatureCheck, public_host, websocket_url_forms

TOKEN = "12345"

# twilio-python tests/unit/test_request_validator.py
VECTOR_URI = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
VECTOR_SIGNATURE_WITH_PORT = "kvajT1Ptam85bY51eRf/AJRuM3w="  # signed over https://mycompany.com:443/...

# Twilio security doc worked example
DOC_URI = "https://example.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}
DOC_SIGNATURE = "L/OH5YylLD5NRKLltdqwSvS0BnU="


def hmac_signature(token: str, url: str, params: dict[str, str] | None = None, digest: str = "sha1") -> str:
    """The signature per Twilio's algorithm, computed here rather than by twilio's RequestValidator."""
    data = url + "".join(name + value for name, value in sorted((params or {}).items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), digest).digest()).decode()


class FormData:
    """A multi-valued form, as Starlette and Django give it: `getlist` and iteration over names."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def getlist(self, key: str) -> list[str]:
        return [value for name, value in self._items if name == key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._items))


CHECK = TwilioSignatureCheck(TOKEN)


# --- webhooks ------------------------------------------------------------------------------------------------


def test_the_independent_signature_agrees_with_the_published_vectors() -> None:
    assert hmac_signature(TOKEN, VECTOR_URI, VECTOR_PARAMS) == VECTOR_SIGNATURE
    assert hmac_signature(TOKEN, DOC_URI, DOC_PARAMS) == DOC_SIGNATURE


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (VECTOR_URI, VECTOR_PARAMS, VECTOR_SIGNATURE),
        (VECTOR_URI, VECTOR_PARAMS, VECTOR_SIGNATURE_WITH_PORT),
        (DOC_URI, DOC_PARAMS, DOC_SIGNATURE),
    ],
    ids=["twilio-python", "twilio-python-port-443", "security-doc"],
)
def test_webhook_ok_accepts_the_published_vectors(url: str, params: dict[str, str], signature: str) -> None:
    assert CHECK.webhook_ok(url, params, signature)


def test_webhook_ok_accepts_multi_valued_form_data() -> None:
    # twilio-python's duplicate-key vector: values are sorted and de-duplicated per name.
    form = FormData([("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"),
                     ("Digits", "1234")])  # fmt: skip
    assert CHECK.webhook_ok(VECTOR_URI, form, "IK+Dwps556ElfBT0I3Rgjkr1wJU=")


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (VECTOR_URI, {**VECTOR_PARAMS, "Digits": "1235"}),
        (VECTOR_URI, {**VECTOR_PARAMS, "Extra": "1"}),
        (VECTOR_URI, {k: v for k, v in VECTOR_PARAMS.items() if k != "To"}),
        ("https://mycompany.com/myapp.php?foo=1&bar=3", VECTOR_PARAMS),
        ("https://evil.example.com/myapp.php?foo=1&bar=2", VECTOR_PARAMS),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", VECTOR_PARAMS),
    ],
    ids=["param-value", "param-added", "param-removed", "query", "host", "scheme"],
)
def test_webhook_ok_rejects_a_tampered_request(url: str, params: dict[str, str]) -> None:
    assert not CHECK.webhook_ok(url, params, VECTOR_SIGNATURE)


@pytest.mark.parametrize("signature", [None, ""])
def test_webhook_ok_rejects_a_missing_signature(signature: str | None) -> None:
    assert not CHECK.webhook_ok(VECTOR_URI, VECTOR_PARAMS, signature)


def test_webhook_ok_rejects_everything_when_the_auth_token_is_empty() -> None:
    check = TwilioSignatureCheck("")
    signed_with_empty_key = hmac_signature("", VECTOR_URI, VECTOR_PARAMS)
    assert not check.webhook_ok(VECTOR_URI, VECTOR_PARAMS, signed_with_empty_key)
    assert not check.websocket_ok(["wss://h/x"], hmac_signature("", "wss://h/x"))


def test_webhook_ok_rejects_a_signature_made_with_another_token() -> None:
    assert not CHECK.webhook_ok(VECTOR_URI, VECTOR_PARAMS, hmac_signature("54321", VECTOR_URI, VECTOR_PARAMS))


def test_webhook_ok_uses_the_algorithm_named_in_the_settings_header() -> None:
    sha256 = hmac_signature(TOKEN, VECTOR_URI, VECTOR_PARAMS, digest="sha256")
    header = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    assert CHECK.webhook_ok(VECTOR_URI, VECTOR_PARAMS, sha256, header)
    assert not CHECK.webhook_ok(VECTOR_URI, VECTOR_PARAMS, sha256)
    assert not CHECK.webhook_ok(VECTOR_URI, VECTOR_PARAMS, VECTOR_SIGNATURE, header)
    assert not CHECK.webhook_ok(VECTOR_URI, VECTOR_PARAMS, VECTOR_SIGNATURE, "algorithm=HMAC_MD5")


@pytest.mark.parametrize("signature", [None, "", "garbage", VECTOR_SIGNATURE])
def test_a_disabled_check_accepts_anything(signature: str | None) -> None:
    check = TwilioSignatureCheck("", enabled=False)
    assert check.webhook_ok("https://anything.example/x", {"a": "b"}, signature)
    assert check.websocket_ok([], signature)


def test_sign_matches_the_published_vector() -> None:
    assert CHECK.sign(VECTOR_URI, VECTOR_PARAMS) == VECTOR_SIGNATURE
    assert CHECK.sign("wss://h/x") == hmac_signature(TOKEN, "wss://h/x")


names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True)


@given(
    path=st.from_regex(r"/[a-z0-9/_-]{0,30}", fullmatch=True),
    params=st.dictionaries(names, st.text(max_size=40), max_size=8),
)
def test_sign_output_validates_and_is_the_independent_signature(path: str, params: dict[str, str]) -> None:
    url = "https://bot.example.com" + path
    signature = CHECK.sign(url, params)
    assert signature == hmac_signature(TOKEN, url, params)
    assert CHECK.webhook_ok(url, params, signature)


# --- websocket upgrade ---------------------------------------------------------------------------------------

HOST = "bot.example.com"
PATH = "/twilio/media"


def test_websocket_url_forms_are_wss_wss_with_slash_and_https() -> None:
    assert websocket_url_forms(HOST, PATH) == [
        "wss://bot.example.com/twilio/media",
        "wss://bot.example.com/twilio/media/",
        "https://bot.example.com/twilio/media",
    ]
    assert websocket_url_forms(HOST, PATH + "/") == websocket_url_forms(HOST, PATH)


def test_websocket_url_forms_insecure_are_ws_and_http() -> None:
    assert websocket_url_forms("127.0.0.1:8000", PATH, secure=False) == [
        "ws://127.0.0.1:8000/twilio/media",
        "ws://127.0.0.1:8000/twilio/media/",
        "http://127.0.0.1:8000/twilio/media",
    ]


@pytest.mark.parametrize("signed_url", websocket_url_forms(HOST, PATH))
def test_websocket_ok_accepts_a_signature_over_each_form(signed_url: str) -> None:
    assert CHECK.websocket_ok(websocket_url_forms(HOST, PATH), hmac_signature(TOKEN, signed_url))


@pytest.mark.parametrize(
    "signed_url",
    [
        "wss://other.example.com/twilio/media",
        "wss://bot.example.com/twilio/media?call=CA1",
        "wss://bot.example.com/twilio/other",
        "http://bot.example.com/twilio/media",
    ],
    ids=["other-host", "query-string", "other-path", "insecure-scheme"],
)
def test_websocket_ok_rejects_a_signature_over_another_url(signed_url: str) -> None:
    assert not CHECK.websocket_ok(websocket_url_forms(HOST, PATH), hmac_signature(TOKEN, signed_url))


@pytest.mark.parametrize("signature", [None, ""])
def test_websocket_ok_rejects_a_missing_signature(signature: str | None) -> None:
    assert not CHECK.websocket_ok(websocket_url_forms(HOST, PATH), signature)


@pytest.mark.parametrize(
    ("public_url", "request_host", "expected"),
    [
        ("https://bot.example.com", "127.0.0.1:8000", "bot.example.com"),
        ("https://bot.example.com:8443", "127.0.0.1:8000", "bot.example.com:8443"),
        (None, "abc.ngrok.io", "abc.ngrok.io"),
    ],
)
def test_public_host_prefers_the_public_url(public_url: str | None, request_host: str, expected: str) -> None:
    assert public_host(public_url, request_host) == expected


# --- API bearer token ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "Bearer  s3cret "])
def test_api_token_check_accepts_the_bearer_token(header: str) -> None:
    assert ApiTokenCheck("s3cret").ok(header)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Bearer wrong", "Bearer s3cret2", "Bearer s3cre", "Basic s3cret", "s3cret",
     "Token s3cret"],
)  # fmt: skip
def test_api_token_check_rejects_other_headers(header: str | None) -> None:
    assert not ApiTokenCheck("s3cret").ok(header)


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Bearer  ", "Bearer anything"])
def test_api_token_check_with_an_empty_token_refuses_everyone(header: str | None) -> None:
    check = ApiTokenCheck("")
    assert not check.configured
    assert not check.ok(header)


def test_api_token_check_is_configured_with_a_token() -> None:
    assert ApiTokenCheck("s3cret").configured
