"""Which media stream may speak for a call: one opened with the ticket our voice webhook issued for it.

Twilio signs the websocket upgrade over the URL only, so a captured upgrade could open any number of
streams, and a forged `start` could name any live call. The voice webhook therefore issues each call a
single-use, expiring ticket (a `<Parameter>` of its `<Stream>`, which Twilio hands back in `start`), bound to
that call's SID by an HMAC. A stream whose ticket is missing, forged, for another call, expired or already
used is refused before it can touch the call. Pure: the clock is given.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TICKET_PARAMETER = "stream_ticket"
TICKET_TTL_S = 300.0  # from the voice webhook to the stream's start: seconds normally; five minutes at most


@dataclass(frozen=True)
class Admission:
    """Whether a stream may speak for a call, and if not, why (for the log; never the ticket itself)."""

    admitted: bool
    why: str = ""


class StreamTickets:
    """Issues and checks stream tickets. One instance per server; tickets are single use within it."""

    def __init__(self, secret: bytes, ttl_s: float = TICKET_TTL_S, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("stream tickets need a secret")
        self._secret = secret
        self._ttl_s = ttl_s
        self._clock = clock
        self._used: dict[str, float] = {}  # nonce -> when it expires (kept that long, then forgotten)
        self._lock = threading.Lock()

    def issue(self, call_sid: str) -> str:
        """A ticket for the call's stream: `<expires>.<nonce>.<mac>`."""
        expires = int(self._clock() + self._ttl_s)
        nonce = secrets.token_urlsafe(12)
        return f"{expires}.{nonce}.{self._mac(call_sid, expires, nonce)}"

    def admit(self, call_sid: str, ticket: str | None) -> Admission:
        """Admit the stream once: the ticket must be this call's, unexpired, and not used before."""
        if not call_sid or not ticket:
            return Admission(False, "no stream ticket")
        parts = ticket.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return Admission(False, "a malformed stream ticket")
        expires_text, nonce, mac = parts
        expires = int(expires_text)
        if not hmac.compare_digest(mac, self._mac(call_sid, expires, nonce)):
            return Admission(False, "a stream ticket that is not this call's")
        now = self._clock()
        if now > expires:
            return Admission(False, "an expired stream ticket")
        with self._lock:
            self._forget_expired(now)
            if nonce in self._used:
                return Admission(False, "a stream ticket used before (a second stream for the call)")
            self._used[nonce] = expires
        return Admission(True)

    def _mac(self, call_sid: str, expires: int, nonce: str) -> str:
        message = f"{call_sid}|{expires}|{nonce}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def _forget_expired(self, now: float) -> None:
        if len(self._used) > 1024:  # rarely: only tickets that can still be replayed need remembering
            self._used = {n: e for n, e in self._used.items() if e >= now}


def ticket_secret(auth_token: str) -> bytes:
    """The tickets' key: derived from the Twilio auth token (the same on every node), or random per process."""
    if auth_token:
        return hmac.new(auth_token.encode(), b"handoff stream tickets", hashlib.sha256).digest()
    return secrets.token_bytes(32)
