"""What the console keeps: accounts, signed-in sessions, failed sign-ins, and the agents' wrap-ups.

Passwords are hashed before they reach this module and session tokens arrive as their SHA-256: the database
never holds anything a thief could sign in with. Everything here is keyed so a repeated write changes one row
(a wrap-up submitted twice is one wrap-up, updated).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select

from telephony.store.errors import StoreError
from telephony.store.models import ROLES, Call, ConsoleSession, Handoff, LoginFailure, User, WrapUp
from telephony.store.transactions import Row, Transactions, as_rows, require, require_aware


@dataclass(frozen=True)
class Account:
    """A console account as the server sees it (no password hash)."""

    id: int
    name: str
    role: str
    disabled: bool


@dataclass(frozen=True)
class SignedIn:
    """A live console session: who, and the CSRF token its forms must carry."""

    account: Account
    csrf_token: str


def _account(user: User) -> Account:
    return Account(user.id, user.name, user.role, user.disabled)


class ConsoleRecords(Transactions):
    """Accounts, sessions, throttling and wrap-ups; part of `Store`."""

    # --- accounts ------------------------------------------------------------------------------------------

    def add_user(self, name: str, password_hash: str, role: str) -> Account:
        """A new account; a name that exists is an error (use `set_password` to change one)."""
        require(role, ROLES, "role")
        with self._tx("add_user") as s:
            if s.scalar(select(User.id).where(User.name == name)) is not None:
                raise StoreError(f"a user named {name!r} exists already")
            user = User(name=name, password_hash=password_hash, role=role, disabled=False, created_at=self._clock())
            s.add(user)
            s.flush()
            return _account(user)

    def set_password(self, name: str, password_hash: str, role: str | None = None) -> bool:
        """Change an account's password (and role); False when there is no such account."""
        if role is not None:
            require(role, ROLES, "role")
        with self._tx("set_password") as s:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                return False
            user.password_hash = password_hash
            user.role = role or user.role
            s.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))  # a new password signs out
            return True

    def credentials(self, name: str) -> tuple[Account, str] | None:
        """The account and its password hash, to check a sign-in."""
        with self._tx("credentials", read_only=True) as s:
            user = s.scalar(select(User).where(User.name == name))
            return (_account(user), user.password_hash) if user is not None else None

    def list_users(self) -> list[Account]:
        with self._tx("list_users", read_only=True) as s:
            return [_account(u) for u in s.scalars(select(User).order_by(User.name))]

    # --- sessions ------------------------------------------------------------------------------------------

    def open_session(self, token_hash: str, user_id: int, csrf_token: str, expires_at: datetime) -> None:
        require_aware(expires_at, "expires_at")
        with self._tx("open_session") as s:
            now = self._clock()
            s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))  # tidy as we go
            s.add(ConsoleSession(token_hash=token_hash, user_id=user_id, csrf_token=csrf_token, created_at=now,
                                 expires_at=expires_at))  # fmt: skip

    def signed_in(self, token_hash: str) -> SignedIn | None:
        """The session for this token, if it exists, has not expired, and its account is enabled."""
        with self._tx("signed_in", read_only=True) as s:
            row = s.execute(
                select(ConsoleSession, User)
                .join(User, User.id == ConsoleSession.user_id)
                .where(ConsoleSession.token_hash == token_hash, ConsoleSession.expires_at > self._clock())
            ).first()
            if row is None or row[1].disabled:
                return None
            return SignedIn(_account(row[1]), row[0].csrf_token)

    def close_session(self, token_hash: str) -> None:
        with self._tx("close_session") as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))

    # --- throttling ----------------------------------------------------------------------------------------

    def login_failed(self, name: str, client: str) -> None:
        with self._tx("login_failed") as s:
            s.add(LoginFailure(name=name[:128], client=client[:128], at=self._clock()))

    def recent_failures(self, name: str, client: str, since: datetime) -> int:
        """Failed sign-ins for this name or from this client since `since`, whichever is more."""
        with self._tx("recent_failures", read_only=True) as s:
            by_name = s.scalar(select(func.count()).where(LoginFailure.name == name[:128], LoginFailure.at > since))
            by_client = s.scalar(
                select(func.count()).where(LoginFailure.client == client[:128], LoginFailure.at > since)
            )
            return max(int(by_name or 0), int(by_client or 0))

    def login_succeeded(self, name: str, before: datetime) -> None:
        """Forget this name's failures and everyone's older than `before`."""
        with self._tx("login_succeeded") as s:
            s.execute(delete(LoginFailure).where(or_(LoginFailure.name == name[:128], LoginFailure.at < before)))

    # --- the queue and the card ----------------------------------------------------------------------------

    def live_handoffs(self, statuses: frozenset[str], since: datetime, limit: int = 200) -> list[Row]:
        """Handoffs in these statuses created since `since`, oldest first (the longest wait on top)."""
        query = (
            select(Handoff, Call.caller)
            .join(Call, Call.call_sid == Handoff.call_sid)
            .where(Handoff.status.in_(sorted(statuses)), Handoff.created_at >= since)
            .order_by(Handoff.created_at, Handoff.handoff_id)
            .limit(limit)
        )
        with self._tx("live_handoffs", read_only=True) as s:
            return [{**h.as_dict(), "caller": caller} for h, caller in s.execute(query)]

    def caller_history(self, caller: str, before_call: str, limit: int = 20) -> list[Row]:
        """The caller's other calls, newest first, each with its handoff and wrap-up (when there was one)."""
        query = (
            select(Call, Handoff, WrapUp)
            .outerjoin(Handoff, Handoff.call_sid == Call.call_sid)
            .outerjoin(WrapUp, WrapUp.handoff_id == Handoff.handoff_id)
            .where(Call.caller == caller, Call.call_sid != before_call)
            .order_by(Call.created_at.desc())
            .limit(limit)
        )
        with self._tx("caller_history", read_only=True) as s:
            return [
                {
                    "call_sid": call.call_sid,
                    "created_at": call.created_at.isoformat(),
                    "final_outcome": call.final_outcome,
                    "handoff_id": handoff.handoff_id if handoff else None,
                    "queue": handoff.queue if handoff else None,
                    "category": handoff.category if handoff else None,
                    "status": handoff.status if handoff else None,
                    "disposition": wrapup.disposition if wrapup else None,
                    "resolved": wrapup.resolved if wrapup else None,
                }
                for call, handoff, wrapup in s.execute(query)
            ]

    # --- wrap-ups ------------------------------------------------------------------------------------------

    def save_wrapup(self, handoff_id: str, account: Account | None, agent: str, fields: Row) -> Row:
        """Store the wrap-up of a handoff (a second one from the console replaces the first)."""
        with self._tx("save_wrapup") as s:
            handoff = s.get(Handoff, handoff_id)
            if handoff is None:
                raise StoreError(f"no handoff {handoff_id}")
            now = self._clock()
            wrapup = s.scalar(select(WrapUp).where(WrapUp.handoff_id == handoff_id).with_for_update())
            if wrapup is None:
                wrapup = WrapUp(handoff_id=handoff_id, call_sid=handoff.call_sid, created_at=now)
                s.add(wrapup)
            wrapup.user_id = account.id if account else None
            wrapup.agent = agent
            for name, value in fields.items():
                setattr(wrapup, name, value)
            wrapup.updated_at = now
            s.flush()
            return wrapup.as_dict()

    def wrapup(self, handoff_id: str) -> Row | None:
        with self._tx("wrapup", read_only=True) as s:
            row = s.scalar(select(WrapUp).where(WrapUp.handoff_id == handoff_id))
            return row.as_dict() if row is not None else None

    def list_wrapups(self, limit: int = 100, queue: str | None = None) -> list[Row]:
        """Wrap-ups, newest first, with the handoff's queue and category (the supervisor's feedback view)."""
        query = (
            select(WrapUp, Handoff.queue, Handoff.category)
            .join(Handoff, Handoff.handoff_id == WrapUp.handoff_id)
            .order_by(WrapUp.created_at.desc(), WrapUp.id.desc())
            .limit(limit)
        )
        if queue is not None:
            query = query.where(Handoff.queue == queue)
        with self._tx("list_wrapups", read_only=True) as s:
            return [{**w.as_dict(), "queue": q, "category": c} for w, q, c in s.execute(query)]

    def queue_stamp(self) -> str:
        """Changes whenever a handoff or a wrap-up is added or updated (on any instance): the console's cue."""
        with self._tx("queue_stamp", read_only=True) as s:
            handoffs = s.execute(select(func.count(), func.max(Handoff.updated_at))).one()
            wrapups = s.execute(select(func.count(), func.max(WrapUp.updated_at))).one()
            return _stamp_of(handoffs[0], handoffs[1]) + "/" + _stamp_of(wrapups[0], wrapups[1])

    def handoff_for_call(self, call_sid: str) -> Row | None:
        with self._tx("handoff_for_call", read_only=True) as s:
            rows = as_rows(s.scalars(select(Handoff).where(Handoff.call_sid == call_sid)))
            return rows[0] if rows else None


def _stamp_of(count: object, latest: object) -> str:
    return f"{count}:{latest}"
