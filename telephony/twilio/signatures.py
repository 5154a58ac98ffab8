"""Whether a request really came from Twilio: its X-Twilio-Signature, checked against the URL it was sent to.

Signatures are checked with twilio's own `RequestValidator`. The URL Twilio signed is the public one it
requested, which behind a proxy or tunnel is not what the server sees, so it is rebuilt from the
`public_url` setting when one is given. For the websocket upgrade Twilio does not document the exact
URL it signs; we accept `wss://host/path`, the same with a trailing slash, and its `https://` form, all
without parameters (shared/TWILIO.md §6).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit

from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

log = logging.getLogger(__name__)

__all__ = ["SIGNATURE_HEADER", "SIGNATURE_SETTINGS_HEADER", "TwilioSignatureCheck"]


class _Params(Protocol):
    def getlist(self, key: str) -> list[str]: ...
    def __iter__(self) -> Iterator[str]: ...


class TwilioSignatureCheck:
    """Decides whether a request really came from Twilio, given the URL it was sent to."""

    def __init__(self, auth_token: str, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._validator = RequestValidator(auth_token)
        self._has_token = bool(auth_token)

    def webhook_ok(
        self,
        url: str,
        params: Mapping[str, str] | _Params,
        signature: str | None,
        settings_header: str | None = None,
    ) -> bool:
        """True when `signature` signs `url` and the POST `params` (or checking is off)."""
        if not self.enabled:
            return True
        if not signature or not self._has_token:
            return False
        return bool(self._validator.validate(url, params, signature, get_signature_algorithm(settings_header)))

    def websocket_ok(self, candidate_urls: Sequence[str], signature: str | None) -> bool:
        """True when `signature` signs any of the URL forms Twilio may have used for the upgrade."""
        if not self.enabled:
            return True
        if not signature or not self._has_token:
            return False
        return any(self._validator.validate(url, {}, signature) for url in candidate_urls)

    def sign(self, url: str, params: Mapping[str, str] | None = None) -> str:
        """The signature Twilio would send; the replay harness plays Twilio with it."""
        return str(self._validator.compute_signature(url, params or {}))


def websocket_url_forms(host: str, path: str, *, secure: bool = True) -> list[str]:
    """The URL forms Twilio may sign for a media-stream upgrade to `host` + `path` (no query).

    `secure` False is for a plain-http test server, whose stream URL is ws://.
    """
    bare = path.rstrip("/") or "/"
    ws, http = ("wss", "https") if secure else ("ws", "http")
    forms = [f"{ws}://{host}{bare}", f"{ws}://{host}{bare}/", f"{http}://{host}{bare}"]
    return list(dict.fromkeys(forms))


def public_host(public_url: str | None, request_host: str) -> str:
    """The host Twilio reached us at: the public URL's, or the request's Host header."""
    return urlsplit(public_url).netloc if public_url else request_host
