"""Errors raised by the telephony layer.

Hierarchy::

    TelephonyError
    ├── SignatureError        an X-Twilio-Signature that is missing or does not match
    ├── ScenarioError         a replay scenario file that cannot be used (file, path, reason)
    ├── ReplayError           the replay harness could not complete a call against the server
    └── TransferError         a transfer failed; ``retryable`` says whether trying again makes sense

Protocol problems on the media stream are not raised: ``MediaStreamProtocol.receive`` returns a
``ProtocolError`` event instead, so one bad message never ends a call.
"""

from __future__ import annotations


class TelephonyError(Exception):
    """Base of every error the telephony layer raises."""


class SignatureError(TelephonyError):
    """A Twilio request whose signature is missing or wrong; it is answered with 403."""


class ScenarioError(TelephonyError):
    """A scenario file that does not validate; the message names the file and the field path."""


class ReplayError(TelephonyError):
    """The replay harness could not play Twilio's part to the end."""


class TransferError(TelephonyError):
    """A transfer could not be carried out."""

    def __init__(self, message: str, *, call_sid: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.call_sid = call_sid
        self.retryable = retryable
