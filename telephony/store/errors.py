"""Errors raised by the store.

Hierarchy::

    TelephonyError
    └── StoreError      a read or write that failed; ``retryable`` says whether trying again makes sense

Every database failure (locked file, lost connection, violated constraint) and every value the schema
cannot hold (an unknown status, a naive datetime) surfaces as a ``StoreError`` naming the operation and
the call SID, so a caller catches one type and knows whether to retry.
"""

from __future__ import annotations

from telephony import TelephonyError


class StoreError(TelephonyError):
    """A store operation that did not happen; nothing of it was written."""

    def __init__(self, message: str, *, call_sid: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.call_sid = call_sid
        self.retryable = retryable
