"""The store: everything a call leaves behind, written so that a repeat changes nothing.

Twilio retries callbacks, websockets drop and servers restart, so every write is keyed by what identifies it
(CallSid, DialCallSid, RecordingSid, an index in the call record, an idempotency key) and done as "insert, or
update that row" inside one short transaction. Methods are synchronous and thread-safe: the server calls them
from worker threads, never from the event loop. This module holds calls, handoffs and the event log; dial
attempts, callbacks, voicemails and deliveries are in `after_handoff`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError
from sqlalchemy import select

from dialogs.package import HandoffPackage
from telephony.calls.records import CallRecord
from telephony.store.after_handoff import AfterHandoff, deliveries_query, dial_attempts_query
from telephony.store.analytics import AnalyticsRecords
from telephony.store.call_records import (
    call_values,
    from_epoch,
    handoff_routing,
    record_from_rows,
    timeline_rows,
)
from telephony.store.console_records import ConsoleRecords
from telephony.store.driver import DriverConnection
from telephony.store.errors import StoreError
from telephony.store.models import HANDOFF_STATUSES, Call, Callback, Delivery, Event, Handoff, Prompt, Turn, Voicemail
from telephony.store.review_records import ReviewRecords
from telephony.store.transactions import Row, as_rows, require


class Store(AnalyticsRecords, ConsoleRecords, ReviewRecords, AfterHandoff):
    """Calls, turns, prompts, handoffs, dial attempts, callbacks, voicemails, deliveries and the event log.

    `url` is a SQLAlchemy URL for SQLite or PostgreSQL (`sqlite:///data/handoff.db`,
    `postgresql://user:pw@host/db`). Call `migrate()` once at start-up. `clock` (aware UTC) is for tests.
    """

    # --- calls ---------------------------------------------------------------------------------------------

    def save_call(self, record: CallRecord) -> None:
        """Write the call record: its row, turns and prompts by index, new timeline entries, and its handoff.

        Saving the same or a grown record again duplicates nothing; a handoff already beyond "pending" keeps its
        status. After a restart, continue the record from `load_call`: a blank record's turn 0 would replace
        the stored turn 0.
        """
        sid = record.call_sid
        changes = self._stored_rows.changes(record)
        try:
            with self._driver_tx("save_call", sid) as c:
                now = self._clock()
                stored = self._claim_call_row(c, sid, from_epoch(record.created_at), row_stored=changes.row_stored)
                self._update_call(c, sid, {**call_values(stored, record), "updated_at": now, "writer": self.writer})
                self._upsert(c, Turn, ("call_sid", "seq"), changes.turns)
                self._upsert(c, Prompt, ("call_sid", "seq"), changes.prompts)
                events = timeline_rows(record, now, changes.timeline_from)
                self._upsert(c, Event, ("idempotency_key",), events, overwrite=False)  # a stored event stays
                decision = record.decision
                if decision is not None and decision.package is not None and not changes.handoff_stored:
                    self._put_handoff(c, sid, decision.package, handoff_routing(decision), "pending")
        except Exception:
            self._stored_rows.forget(sid)  # not sure what is stored now: the next save writes everything
            raise
        self._stored_rows.stored(record, changes)

    def call_writer(self, call_sid: str) -> str | None:
        """Which instance saved the call's record last (None: no such call, or never saved with a writer)."""
        with self._tx("call_writer", call_sid, read_only=True) as s:
            return s.scalar(select(Call.writer).where(Call.call_sid == call_sid))

    def load_call(self, call_sid: str) -> CallRecord | None:
        """The stored call as a `CallRecord`, for a restarted server to carry on from instead of a blank one."""
        with self._tx("load_call", call_sid, read_only=True) as s:
            call = s.get(Call, call_sid)
            if call is None:
                return None
            turns = list(s.scalars(select(Turn).where(Turn.call_sid == call_sid).order_by(Turn.seq)))
            prompts = list(s.scalars(select(Prompt).where(Prompt.call_sid == call_sid).order_by(Prompt.seq)))
            events = list(s.scalars(select(Event).where(Event.call_sid == call_sid).order_by(Event.id)))
            handoff = s.scalar(select(Handoff).where(Handoff.call_sid == call_sid))
        try:
            return record_from_rows(call, turns, prompts, events, handoff)
        except ValidationError as exc:
            message = (
                f"the stored call no longer fits CallRecord ({exc.error_count()} problems): {exc.errors()[0]['msg']}"
            )
            raise StoreError(message, call_sid=call_sid) from exc

    def get_call(self, call_sid: str) -> Row | None:
        """Everything about one call, JSON-ready (for GET /api/calls/{call_sid}): the call's fields with its
        transcript, prompts, handoff, dial attempts, callbacks, voicemails, deliveries and events."""
        with self._tx("get_call", call_sid, read_only=True) as s:
            call = s.get(Call, call_sid)
            if call is None:
                return None
            handoff = s.scalar(select(Handoff).where(Handoff.call_sid == call_sid))
            deliveries: list[Row] = []
            if handoff is not None:
                deliveries = as_rows(s.scalars(deliveries_query().where(Delivery.handoff_id == handoff.handoff_id)))
            return {
                **call.as_dict(),
                "transcript": as_rows(s.scalars(select(Turn).where(Turn.call_sid == call_sid).order_by(Turn.seq))),
                "prompts": as_rows(s.scalars(select(Prompt).where(Prompt.call_sid == call_sid).order_by(Prompt.seq))),
                "handoff": handoff.as_dict() if handoff is not None else None,
                "dial_attempts": as_rows(s.scalars(dial_attempts_query(call_sid))),
                "callbacks": as_rows(s.scalars(select(Callback).where(Callback.call_sid == call_sid))),
                "voicemails": as_rows(s.scalars(select(Voicemail).where(Voicemail.call_sid == call_sid))),
                "deliveries": deliveries,
                "events": as_rows(s.scalars(select(Event).where(Event.call_sid == call_sid).order_by(Event.id))),
            }

    def set_final_outcome(self, call_sid: str, final_outcome: str) -> bool:
        """Record how the call ended for the caller ("bridged", "voicemail", ...); False if the call is unknown."""
        with self._tx("set_final_outcome", call_sid) as s:
            call = s.get(Call, call_sid, with_for_update=True)
            if call is None:
                return False
            call.final_outcome, call.updated_at = final_outcome, self._clock()
            return True

    # --- handoffs ------------------------------------------------------------------------------------------

    def save_handoff(
        self, call_sid: str, package: HandoffPackage, routing: Mapping[str, object], status: str = "pending"
    ) -> None:
        """Store the package and where it was routed and why. Again for the same handoff, update them: routing
        is merged key by key, and "pending" never moves a handoff back. A second handoff for a call is an error.
        """
        require(status, HANDOFF_STATUSES, "handoff status", call_sid)
        with self._driver_tx("save_handoff", call_sid) as c:
            self._claim_call_row(c, call_sid, self._clock())
            self._put_handoff(c, call_sid, package, dict(routing), status)

    def set_handoff_status(self, handoff_id: str, status: str) -> bool:
        """Move a handoff to `status` (any of them, unlike a re-save); False if there is no such handoff."""
        require(status, HANDOFF_STATUSES, "handoff status")
        with self._tx("set_handoff_status") as s:
            handoff = s.get(Handoff, handoff_id, with_for_update=True)
            if handoff is None:
                return False
            handoff.status, handoff.updated_at = status, self._clock()
            return True

    def get_handoff(self, handoff_id: str) -> Row | None:
        """The handoff with its package (load it with `HandoffPackage.model_validate`), routing and status."""
        with self._tx("get_handoff", read_only=True) as s:
            handoff = s.get(Handoff, handoff_id)
            return handoff.as_dict() if handoff is not None else None

    def list_handoffs(self, status: str | None = None, queue: str | None = None, limit: int = 100) -> list[Row]:
        """Handoffs, newest first, optionally only those in one status and/or queue."""
        if limit < 1:
            raise StoreError(f"limit must be at least 1, got {limit}")
        query = select(Handoff).order_by(Handoff.created_at.desc(), Handoff.handoff_id.desc()).limit(limit)
        if status is not None:
            query = query.where(Handoff.status == status)
        if queue is not None:
            query = query.where(Handoff.queue == queue)
        with self._tx("list_handoffs", read_only=True) as s:
            return as_rows(s.scalars(query))

    def _put_handoff(
        self, c: DriverConnection, call_sid: str, package: HandoffPackage, routing: dict[str, object], status: str
    ) -> None:
        """Insert the handoff, or update the call's own, in the transaction of the call's save (on the driver)."""
        if package.call_sid != call_sid:
            raise StoreError(f"handoff {package.handoff_id} belongs to call {package.call_sid}", call_sid=call_sid)
        found = self._handoff_of_call.first(c, {"of_call": call_sid})
        other = found["handoff_id"] if found is not None else None
        if other is not None and other != package.handoff_id:
            raise StoreError(f"call already has handoff {other}; not storing {package.handoff_id}", call_sid=call_sid)
        now = self._clock()
        queue = routing.get("queue")
        fields: Row = {
            "package": package.model_dump(mode="json"),
            "category": package.reason.category,
            "trigger": package.reason.trigger,
            "queue": queue if isinstance(queue, str) and queue else package.recommended_queue,
            "urgency": package.urgency,
            "updated_at": now,
        }
        if other is None:
            new = {"handoff_id": package.handoff_id, "call_sid": call_sid, "status": status, "routing": routing}
            if self._handoff_insert.run(c, {**new, **fields, "created_at": now}) == 1:
                return
        stored = self._handoff_locked.first(c, {"locked_id": package.handoff_id})
        if stored is None or stored["call_sid"] != call_sid:
            raise StoreError(f"handoff id {package.handoff_id} is taken by another call", call_sid=call_sid)
        before = stored["routing"]
        merged: Row = {**fields, "routing": {**before, **routing} if isinstance(before, dict) else routing}
        if status != "pending" or stored["status"] == "pending":  # "pending" never moves a handoff back
            merged["status"] = status
        self._update_by_key(c, Handoff, "handoff_id", package.handoff_id, merged)

    # --- event log -----------------------------------------------------------------------------------------

    def log_event(
        self,
        call_sid: str | None,
        kind: str,
        detail: Mapping[str, object],
        idempotency_key: str | None = None,
        t_ms: int = 0,
    ) -> bool:
        """Append to the event log. False when `idempotency_key` was seen before: that is a repeated callback.

        Build the key from what identifies the callback, e.g. f"{CallSid}:dial:{DialCallSid}:{DialCallStatus}".
        """
        values: Row = {
            "call_sid": call_sid, "kind": kind, "detail": dict(detail), "t_ms": t_ms,
            "idempotency_key": idempotency_key, "created_at": self._clock(),
        }  # fmt: skip
        with self._tx("log_event", call_sid) as s:
            if idempotency_key is None:
                s.execute(self._insert(Event).values(values))
                return True
            return self._insert_new(s, Event, values, ["idempotency_key"])

    def events(self, call_sid: str, kind: str | None = None) -> list[Row]:
        """The call's event log in the order it was written (only `kind`, when given): timeline entries and
        Twilio callbacks. Instances sharing a call read here what another one logged a moment ago."""
        query = select(Event).where(Event.call_sid == call_sid)
        if kind is not None:
            query = query.where(Event.kind == kind)
        with self._tx("events", call_sid, read_only=True) as s:
            return as_rows(s.scalars(query.order_by(Event.id)))
