"""Who is signed in to the console: argon2id passwords, server-side sessions, CSRF tokens, sign-in throttling.

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, so a copy of the
database signs nobody in, and signing out (or a new password) ends the session on every instance. Each
session has its own CSRF token, which every form carries. Failed sign-ins are counted per name and per
client address; past the limit, sign-in answers 429 until the window passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from telephony.store import Store
from telephony.store.console_records import Account, SignedIn
from telephony.store.models import utcnow

SESSION_COOKIE = "handoff_console"
LOGIN_CSRF_COOKIE = "handoff_login_csrf"
SESSION_TTL = timedelta(hours=12)  # one shift, with room
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_LIMIT = 5  # failed sign-ins per name or per address within the window
MIN_PASSWORD = 10

_hasher = PasswordHasher()  # argon2id with the library's current parameters
_DUMMY_HASH = _hasher.hash("not a password anyone has")  # a missing user costs the same as a wrong password


class SignInRefused(Exception):
    """Wrong name or password, or a disabled account: one message for all, so names cannot be probed."""


class Throttled(Exception):
    """Too many failed sign-ins for this name or from this address: wait for the window to pass."""


def hash_password(password: str) -> str:
    """The argon2id hash to store; refuses passwords too short to be worth hashing."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens (absent never matches)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


@dataclass(frozen=True)
class NewSession:
    """A session just opened: the cookie's token (shown once) and the account."""

    token: str
    account: Account


class ConsoleAuth:
    """Signs people in and out and finds who a cookie belongs to; store calls run off the event loop."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    async def sign_in(self, name: str, password: str, client: str) -> NewSession:
        since = self.clock() - THROTTLE_WINDOW
        if await asyncio.to_thread(self.store.recent_failures, name, client, since) >= THROTTLE_LIMIT:
            raise Throttled
        found = await asyncio.to_thread(self.store.credentials, name)
        stored_hash = found[1] if found is not None else _DUMMY_HASH
        matches = await asyncio.to_thread(password_matches, stored_hash, password)
        if found is None or not matches or found[0].disabled:
            await asyncio.to_thread(self.store.login_failed, name, client)
            raise SignInRefused
        account = found[0]
        token = secrets.token_urlsafe(32)
        await asyncio.to_thread(
            self.store.open_session,
            token_hash(token),
            account.id,
            secrets.token_urlsafe(32),
            self.clock() + SESSION_TTL,
        )
        await asyncio.to_thread(self.store.login_succeeded, name, since)
        return NewSession(token, account)

    async def signed_in(self, token: str | None) -> SignedIn | None:
        if not token or len(token) > 100:
            return None
        return await asyncio.to_thread(self.store.signed_in, token_hash(token))

    async def sign_out(self, token: str) -> None:
        await asyncio.to_thread(self.store.close_session, token_hash(token))
