"""How the in-memory `CallRecord` maps onto rows, and back.

A record only grows while a call runs: turns, prompts and timeline entries are appended, so a list index is
a stable key (`seq`, and `<call_sid>:tl:<index>` for timeline entries). Saving the record again writes the
same rows again. An empty or missing value never erases a stored one, so a thinner copy of the record (one
rebuilt after a restart that did not load the stored call first) cannot wipe what is already known.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from dialogs.package import HandoffPackage
from telephony.calls.records import (
    AttemptNote,
    CallDecision,
    CallRecord,
    PromptRecord,
    TimelineEntry,
    TransferProgress,
    TurnLatency,
    TurnRecord,
)
from telephony.store.models import Call, Event, Handoff, Prompt, Turn

TIMELINE = ":tl:"


def timeline_key(call_sid: str, index: int) -> str:
    """The idempotency key of the record's `index`-th timeline entry."""
    return f"{call_sid}{TIMELINE}{index}"


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def call_values(stored: Mapping[str, Any], record: CallRecord) -> dict[str, object]:
    """The call row's new values: the record's call-level fields over the stored row (`stored`, locked), keeping
    stored values the record does not have. Plain values for one UPDATE, without loading the row into the ORM."""
    values: dict[str, object] = {
        "account_sid": record.account_sid or stored["account_sid"],
        "stream_sid": record.stream_sid or stored["stream_sid"],
        "caller": record.caller or stored["caller"],
        "called": record.called or stored["called"],
        "stream_end": record.stream_end or stored["stream_end"],
        "asr_engine": record.asr_engine or stored["asr_engine"],
        "created_at": min(stored["created_at"], from_epoch(record.created_at)),
    }
    if stored["status"] != "completed":  # a finished call stays finished; a new stream after a drop may restart it
        values["status"] = record.status
    if record.parameters:
        values["parameters"] = dict(record.parameters)
    progress = merged_progress(stored["progress"], record.progress).model_dump(mode="json", exclude_defaults=True)
    if progress:
        values["progress"] = progress
    if record.latencies:
        values["latencies"] = [latency.model_dump(mode="json") for latency in record.latencies]
    if record.protocol_errors:
        values["protocol_errors"] = dict(record.protocol_errors)
    if record.decision is not None:
        values["decision"] = record.decision.model_dump(mode="json", exclude={"package"})
    return values


def merged_progress(stored: Mapping[str, object] | None, mine: TransferProgress) -> TransferProgress:
    """The handoff's progress as this save knows it, joined with what the row (locked) already holds.

    Instances handling webhooks of one call each save their own copy, and a copy can be a moment behind. What a
    handoff comes to only ever grows: a flag once set stays set, and an agent leg, an accepted whisper or an
    attempt once known stays known. So the two are joined, not overwritten: one instance's stale copy can no
    longer undo what another recorded (a bridge, the caller gone). A value this copy has wins over the stored one.
    """
    if not stored:
        return mine
    try:
        theirs = TransferProgress.model_validate(stored)
    except ValidationError:  # an unreadable old row: this save's view replaces it
        return mine
    joined = mine.model_copy(deep=True)
    for name, info in TransferProgress.model_fields.items():
        if info.exclude:
            continue
        own, other = getattr(joined, name), getattr(theirs, name)
        if isinstance(own, bool):
            setattr(joined, name, own or other)
        elif isinstance(own, int):
            setattr(joined, name, max(own, other))
        elif isinstance(own, dict):
            setattr(joined, name, {**other, **own})
        elif isinstance(own, list):
            setattr(joined, name, _joined_list(own, other))
        elif own is None:
            setattr(joined, name, other)
    return joined


def _joined_list(own: list[Any], other: list[Any]) -> list[Any]:
    """Items of both, each once (attempt notes by their attempt), in order: accepted attempts, attempt notes."""
    known = {_key(item) for item in own}
    return sorted(own + [item for item in other if _key(item) not in known], key=_key)


def _key(item: Any) -> Any:
    return item.attempt if isinstance(item, AttemptNote) else item


def turn_rows(record: CallRecord) -> list[dict[str, object]]:
    return [{"call_sid": record.call_sid, "seq": seq, **turn.model_dump()} for seq, turn in enumerate(record.turns)]


def prompt_rows(record: CallRecord) -> list[dict[str, object]]:
    return [
        {"call_sid": record.call_sid, "seq": seq, **prompt.model_dump()} for seq, prompt in enumerate(record.prompts)
    ]


def timeline_rows(record: CallRecord, now: datetime, start: int = 0) -> list[dict[str, object]]:
    """The timeline entries from index `start` on, as rows."""
    return [
        {
            "call_sid": record.call_sid,
            "t_ms": entry.t_ms,
            "kind": entry.kind,
            "detail": dict(entry.detail),
            "idempotency_key": timeline_key(record.call_sid, index),
            "created_at": now,
        }
        for index, entry in enumerate(record.timeline[start:], start)
    ]


@dataclass
class _Stored:
    turns: list[dict[str, object]] = field(default_factory=list)
    prompts: list[dict[str, object]] = field(default_factory=list)
    timeline: int = 0
    decision: CallDecision | None = None  # the decision whose handoff (package and routing) was stored


@dataclass(frozen=True)
class RecordChanges:
    """The rows of a call record that differ from what this process last stored of it."""

    turns: list[dict[str, object]]
    prompts: list[dict[str, object]]
    timeline_from: int
    all_turns: list[dict[str, object]]
    all_prompts: list[dict[str, object]]
    row_stored: bool = False  # this process has stored the call's row before: it exists unless deleted since
    handoff_stored: bool = False  # this process has stored the record's handoff as it stands (the same decision)


class StoredRows:
    """What this process last stored of each call, so a save writes only what changed: a call record is saved at
    every turn, and writing its whole history each time costs more the longer the call runs. Forgetting is always
    safe (the next save writes everything again, and every write is idempotent); so is a restart."""

    def __init__(self, max_calls: int = 4096) -> None:
        self._calls: OrderedDict[str, _Stored] = OrderedDict()
        self._lock = threading.Lock()
        self._max_calls = max_calls

    def changes(self, record: CallRecord) -> RecordChanges:
        turns, prompts = turn_rows(record), prompt_rows(record)
        with self._lock:
            known = self._calls.get(record.call_sid)
        stored = known or _Stored()
        return RecordChanges(
            turns=_changed(turns, stored.turns),
            prompts=_changed(prompts, stored.prompts),
            timeline_from=min(stored.timeline, len(record.timeline)),
            all_turns=turns,
            all_prompts=prompts,
            row_stored=known is not None,
            handoff_stored=known is not None and known.decision is not None and known.decision == record.decision,
        )

    def stored(self, record: CallRecord, changes: RecordChanges) -> None:
        """The save of `changes` committed."""
        with self._lock:
            stored = _Stored(changes.all_turns, changes.all_prompts, len(record.timeline), record.decision)
            self._calls[record.call_sid] = stored
            self._calls.move_to_end(record.call_sid)
            while len(self._calls) > self._max_calls:
                self._calls.popitem(last=False)

    def forget(self, call_sid: str) -> None:
        with self._lock:
            self._calls.pop(call_sid, None)


def _changed(rows: list[dict[str, object]], before: list[dict[str, object]]) -> list[dict[str, object]]:
    return [row for seq, row in enumerate(rows) if seq >= len(before) or before[seq] != row]


def handoff_routing(decision: CallDecision) -> dict[str, object]:
    """The handoff's routing column: the router's decision (queue, targets, reasons) and the mode it chose."""
    routing = decision.routing.model_dump(mode="json") if decision.routing is not None else {}
    return {"mode": decision.mode, "decision_reason": decision.reason, **routing}


def record_from_rows(
    call: Call, turns: list[Turn], prompts: list[Prompt], events: list[Event], handoff: Handoff | None
) -> CallRecord:
    """Rebuild the call's record, so a restarted server appends after what was stored instead of over it."""
    prefix = call.call_sid + TIMELINE
    indexed = [(index, e) for e in events if (index := _timeline_index(e, prefix)) is not None]
    decision = None
    if call.decision is not None:
        package = HandoffPackage.model_validate(handoff.package) if handoff is not None else None
        decision = CallDecision.model_validate({**call.decision, "package": package})
    record = CallRecord.model_validate(
        {
            "call_sid": call.call_sid,
            "account_sid": call.account_sid,
            "stream_sid": call.stream_sid,
            "caller": call.caller,
            "called": call.called,
            "parameters": call.parameters,
            "created_at": call.created_at.timestamp(),
            "status": call.status,
            "stream_end": call.stream_end,
            "asr_engine": call.asr_engine,
            "turns": [TurnRecord.model_validate(_fields(t, TurnRecord.model_fields)) for t in turns],
            "prompts": [PromptRecord.model_validate(_fields(p, PromptRecord.model_fields)) for p in prompts],
            "timeline": [
                TimelineEntry.model_validate({"t_ms": e.t_ms, "kind": e.kind, "detail": e.detail})
                for _, e in sorted(indexed, key=lambda pair: pair[0])
            ],
            "latencies": [TurnLatency.model_validate(latency) for latency in call.latencies],
            "protocol_errors": call.protocol_errors,
            "decision": decision,
            "progress": TransferProgress.model_validate(call.progress),
        }
    )
    return record


def _timeline_index(event: Event, prefix: str) -> int | None:
    """The record index of a timeline entry's event, or None for other events (logged callbacks)."""
    key = event.idempotency_key
    if key is None or not key.startswith(prefix) or not key[len(prefix) :].isdigit():
        return None
    return int(key[len(prefix) :])


def _fields(row: Turn | Prompt, names: Iterable[str]) -> dict[str, object]:
    return {name: getattr(row, name) for name in names}
