"""Errors from Twilio's side of a call: a transfer that could not be carried out."""

from __future__ import annotations

from telephony import TelephonyError


class TransferError(TelephonyError):
    """A transfer could not be carried out; `retryable` says whether trying again makes sense."""

    def __init__(self, message: str, *, call_sid: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.call_sid = call_sid
        self.retryable = retryable
