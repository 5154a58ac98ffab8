"""What happens once a call is handed off: dial attempts, callbacks, voicemails and webhook deliveries.

Each of these is driven by Twilio callbacks (or our own retries), which may arrive twice, late or out of
order. Each write is keyed by the SID or call it belongs to, so a repeat updates the one row instead of adding
another, and the methods say whether the row is new.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TypedDict, cast

from sqlalchemy import Select, delete, select

from telephony.store.errors import StoreError
from telephony.store.jobs import DELIVER_HANDOFF, DIAL_CALLBACK, TRANSCRIBE_VOICEMAIL, defer_job
from telephony.store.models import (
    CALLBACK_STATUSES,
    DELIVERY_STATUSES,
    DIAL_OUTCOMES,
    Call,
    Callback,
    Delivery,
    DialAttempt,
    Event,
    Handoff,
    Prompt,
    Review,
    Turn,
    Voicemail,
    WrapUp,
)
from telephony.store.transactions import Row, Transactions, as_rows, require, require_aware


class DeliveryRow(TypedDict):
    """A delivery as returned; it satisfies `telephony.desk.delivery.DeliveryRecord`."""

    delivery_id: str
    handoff_id: str
    url: str
    status: str
    attempts: int
    last_error: str | None
    payload: dict[str, object]
    created_at: str
    updated_at: str


class AfterHandoff(Transactions):
    """Dial attempts, callbacks, voicemails and deliveries; part of `Store`."""

    # --- dial attempts -------------------------------------------------------------------------------------

    def record_dial_attempt(
        self,
        call_sid: str,
        handoff_id: str | None,
        attempt_no: int,
        target_kind: str,
        target: str,
        *,
        dial_call_sid: str | None = None,
        outcome: str = "pending",
        dial_status: str | None = None,
        duration_s: int | None = None,
    ) -> bool:
        """Record a try at reaching a person; True if it is new.

        A repeat (same DialCallSid, or same call and attempt number) updates the outcome, the raw DialCallStatus
        and the duration, and returns False. "pending" never overwrites a settled outcome.
        """
        require(outcome, DIAL_OUTCOMES, "dial outcome", call_sid)
        values: Row = {
            "call_sid": call_sid, "handoff_id": handoff_id, "attempt_no": attempt_no, "target_kind": target_kind,
            "target": target, "dial_call_sid": dial_call_sid, "outcome": outcome, "dial_status": dial_status,
            "duration_s": duration_s, "created_at": self._clock(),
        }  # fmt: skip
        with self._tx("record_dial_attempt", call_sid) as s:
            if self._insert_new(s, DialAttempt, values):
                return True
            row = None
            if dial_call_sid is not None:
                row = s.scalar(select(DialAttempt).where(DialAttempt.dial_call_sid == dial_call_sid).with_for_update())
            if row is None:
                row = s.scalar(
                    dial_attempts_query(call_sid).where(DialAttempt.attempt_no == attempt_no).with_for_update()
                )
            if row is None or row.call_sid != call_sid:
                raise StoreError(f"dial {dial_call_sid} is recorded for another call", call_sid=call_sid)
            if dial_call_sid is not None and row.dial_call_sid not in (None, dial_call_sid):
                message = f"attempt {row.attempt_no} already has DialCallSid {row.dial_call_sid}, not {dial_call_sid}"
                raise StoreError(message, call_sid=call_sid)
            row.dial_call_sid = row.dial_call_sid or dial_call_sid
            row.handoff_id = row.handoff_id or handoff_id
            if outcome != "pending":
                row.outcome = outcome
            row.dial_status = dial_status if dial_status is not None else row.dial_status
            row.duration_s = duration_s if duration_s is not None else row.duration_s
            return False

    def dial_attempts(self, call_sid: str) -> list[Row]:
        """The call's dial attempts, in attempt order."""
        with self._tx("dial_attempts", call_sid, read_only=True) as s:
            return as_rows(s.scalars(dial_attempts_query(call_sid)))

    # --- callbacks -----------------------------------------------------------------------------------------

    def add_callback(
        self, call_sid: str, handoff_id: str | None, number: str, window: str | None, due_at: datetime
    ) -> tuple[int, bool]:
        """Promise to call the caller back at `due_at` (aware); one per call. Returns (id, created)."""
        require_aware(due_at, "due_at", call_sid)
        values: Row = {
            "call_sid": call_sid, "handoff_id": handoff_id, "number": number, "window": window, "due_at": due_at,
            "status": "requested", "created_at": self._clock(),
        }  # fmt: skip
        with self._tx("add_callback", call_sid) as s:
            created = self._insert_new(s, Callback, values, ["call_sid"])
            callback_id = s.scalar(select(Callback.id).where(Callback.call_sid == call_sid))
            if callback_id is None:  # inserted just now, or there before: only a concurrent delete
                raise StoreError(f"the callback for call {call_sid} vanished while it was being written")
            if created and self.queue_jobs:  # the dial, due when the callback is, written with it
                defer_job(s, DIAL_CALLBACK, {"callback_id": callback_id}, lock=f"callback:{callback_id}",
                          scheduled_at=due_at)  # fmt: skip
            return callback_id, created

    def claim_callback(self, callback_id: int, note: str) -> Row | None:
        """Take a requested callback to dial it ("dialing"); None when it is not waiting to be dialled (another
        worker has it, or it is done): each callback is dialled by one worker at a time."""
        with self._tx("claim_callback") as s:
            callback = s.get(Callback, callback_id, with_for_update=True)
            if callback is None or callback.status != "requested":
                return None
            callback.status, callback.notes = "dialing", note
            s.flush()
            return callback.as_dict()

    def get_callback(self, callback_id: int) -> Row | None:
        with self._tx("get_callback", read_only=True) as s:
            callback = s.get(Callback, callback_id)
            return callback.as_dict() if callback is not None else None

    def callback_answered(self, callback_id: int, answered_by: str) -> None:
        """Who answered the callback's customer leg (a person, or a machine), for the dial's result."""
        with self._tx("callback_answered") as s:
            callback = s.get(Callback, callback_id, with_for_update=True)
            if callback is not None:
                callback.answered_by = answered_by[:32]

    def retry_callback(self, callback_id: int, not_before: datetime, note: str) -> bool:
        """A callback that did not reach the caller waits and is dialled again (its job written with it)."""
        require_aware(not_before, "not_before")
        with self._tx("retry_callback") as s:
            callback = s.get(Callback, callback_id, with_for_update=True)
            if callback is None:
                return False
            callback.status, callback.notes, callback.due_at, callback.done_at = "requested", note, not_before, None
            if self.queue_jobs:
                defer_job(s, DIAL_CALLBACK, {"callback_id": callback_id}, lock=f"callback:{callback_id}",
                          scheduled_at=not_before)  # fmt: skip
            return True

    def mark_callback(self, callback_id: int, status: str, notes: str | None = None) -> bool:
        """Move a callback along ("dialing", then "done" or "failed"); False if there is no such callback."""
        require(status, CALLBACK_STATUSES, "callback status")
        with self._tx("mark_callback") as s:
            callback = s.get(Callback, callback_id, with_for_update=True)
            if callback is None:
                return False
            callback.status = status
            callback.done_at = self._clock() if status in ("done", "failed") else None
            callback.notes = notes if notes is not None else callback.notes
            return True

    def list_callbacks(self, status: str | None = None, limit: int | None = None) -> list[Row]:
        """Callbacks, soonest due first, optionally only those in one status, at most `limit` of them."""
        query = select(Callback).order_by(Callback.due_at, Callback.id).limit(limit)
        if status is not None:
            query = query.where(Callback.status == status)
        with self._tx("list_callbacks", read_only=True) as s:
            return as_rows(s.scalars(query))

    def due_callbacks(self, now: datetime) -> list[Row]:
        """Requested callbacks due at or before `now` (aware), soonest first.

        One in "dialing" is not returned again: after a crash mid-dial, decide with `list_callbacks("dialing")`.
        """
        require_aware(now, "now")
        query = select(Callback).where(Callback.status == "requested", Callback.due_at <= now)
        with self._tx("due_callbacks", read_only=True) as s:
            return as_rows(s.scalars(query.order_by(Callback.due_at, Callback.id)))

    # --- voicemails ----------------------------------------------------------------------------------------

    def save_voicemail(
        self,
        call_sid: str,
        handoff_id: str | None,
        *,
        recording_sid: str | None = None,
        recording_url: str | None = None,
        duration_s: int | None = None,
        transcript: str | None = None,
    ) -> bool:
        """Record the caller's message; True if it is new.

        The Record action callback and the recording status callback may both arrive, in any order and
        repeated: they merge into one row per call, each given value filling in or replacing the stored one,
        and a missing value never erasing it.
        """
        values: Row = {
            "call_sid": call_sid, "handoff_id": handoff_id, "recording_sid": recording_sid,
            "recording_url": recording_url, "duration_s": duration_s, "transcript": transcript,
            "created_at": self._clock(),
        }  # fmt: skip
        with self._tx("save_voicemail", call_sid) as s:
            new = self._insert_new(s, Voicemail, values)
            if not new:
                row = s.scalar(select(Voicemail).where(Voicemail.call_sid == call_sid).with_for_update())
                if row is None:
                    raise StoreError(f"recording {recording_sid} is stored for another call", call_sid=call_sid)
                row.handoff_id = handoff_id or row.handoff_id
                row.recording_sid = recording_sid or row.recording_sid
                row.recording_url = recording_url or row.recording_url
                row.duration_s = duration_s if duration_s is not None else row.duration_s
                row.transcript = transcript or row.transcript
            if self.queue_jobs and recording_sid and recording_url and not transcript:  # the recording is ready
                defer_job(s, TRANSCRIBE_VOICEMAIL, {"call_sid": call_sid}, lock=f"voicemail:{call_sid}")
            return new

    def voicemail(self, call_sid: str) -> Row | None:
        with self._tx("voicemail", call_sid, read_only=True) as s:
            row = s.scalar(select(Voicemail).where(Voicemail.call_sid == call_sid))
            return row.as_dict() if row is not None else None

    def purge_before(self, cutoff: datetime) -> int:
        """Delete the calls that came in before `cutoff` (aware), with everything they left: turns, prompts,
        events, the handoff, dial attempts, callbacks, voicemails, deliveries, wrap-ups and reviews. Returns how
        many calls went. Every table is cleared by call, not left to cascades SQLite may not enforce."""
        require_aware(cutoff, "cutoff")
        with self._tx("purge_before") as s:
            sids = list(s.scalars(select(Call.call_sid).where(Call.created_at < cutoff)))
            for chunk in [sids[i : i + 500] for i in range(0, len(sids), 500)]:
                handoffs = select(Handoff.handoff_id).where(Handoff.call_sid.in_(chunk))
                s.execute(delete(Delivery).where(Delivery.handoff_id.in_(handoffs)))
                for model in (Review, WrapUp, Turn, Prompt, Event, DialAttempt, Callback, Voicemail, Handoff):
                    s.execute(delete(model).where(model.call_sid.in_(chunk)))
                s.execute(delete(Call).where(Call.call_sid.in_(chunk)))
            return len(sids)

    def voicemails(self, call_sid: str) -> list[Row]:
        """The call's voicemail (a list, at most one), for symmetry with the other parts of a call."""
        with self._tx("voicemails", call_sid, read_only=True) as s:
            return as_rows(s.scalars(select(Voicemail).where(Voicemail.call_sid == call_sid)))

    # --- webhook deliveries (the `telephony.desk.delivery.DeliveryLog` protocol) --------------------------------

    def add_delivery(self, delivery_id: str, handoff_id: str, url: str, payload: Mapping[str, object]) -> None:
        """Record a delivery as "pending" before it is sent; again with the same id, nothing changes."""
        now = self._clock()
        values: Row = {
            "delivery_id": delivery_id, "handoff_id": handoff_id, "url": url, "payload": dict(payload),
            "status": "pending", "attempts": 0, "created_at": now, "updated_at": now,
        }  # fmt: skip
        with self._tx("add_delivery") as s:
            if self._insert_new(s, Delivery, values, ["delivery_id"]) and self.queue_jobs:
                defer_job(s, DELIVER_HANDOFF, {"delivery_id": delivery_id}, lock=f"delivery:{delivery_id}")

    def update_delivery(self, delivery_id: str, status: str, attempts: int, last_error: str | None = None) -> None:
        """Record progress on a delivery; an unknown id is an error, as it means the delivery was never logged."""
        require(status, DELIVERY_STATUSES, "delivery status")
        with self._tx("update_delivery") as s:
            delivery = s.get(Delivery, delivery_id, with_for_update=True)
            if delivery is None:
                raise StoreError(f"no delivery {delivery_id}")
            delivery.status, delivery.attempts, delivery.last_error = status, attempts, last_error
            delivery.updated_at = self._clock()

    def get_delivery(self, delivery_id: str) -> DeliveryRow | None:
        with self._tx("get_delivery", read_only=True) as s:
            delivery = s.get(Delivery, delivery_id)
            return cast(DeliveryRow, delivery.as_dict()) if delivery is not None else None

    def deliveries(self, status: str | None = None, limit: int | None = None) -> list[DeliveryRow]:
        """Deliveries, oldest first, optionally only those in one status ("failed" ones to re-send)."""
        query = deliveries_query() if status is None else deliveries_query().where(Delivery.status == status)
        query = query.limit(limit)
        with self._tx("deliveries", read_only=True) as s:
            return [cast(DeliveryRow, delivery.as_dict()) for delivery in s.scalars(query)]


def dial_attempts_query(call_sid: str) -> Select[DialAttempt]:
    return select(DialAttempt).where(DialAttempt.call_sid == call_sid).order_by(DialAttempt.attempt_no)


def deliveries_query() -> Select[Delivery]:
    return select(Delivery).order_by(Delivery.created_at, Delivery.delivery_id)
