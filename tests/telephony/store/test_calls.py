"""A call record survives the database whole, saving it again (as is, or grown) duplicates nothing, a thinner
copy erases nothing, and a restarted server (a second Store on the same database) sees and continues it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text

from telephony.calls.records import AttemptNote, TransferProgress, TurnRecord, VoicemailNote
from telephony.store import Store, StoreError
from telephony.store.models import Base, Call, Event, Handoff, Prompt, Turn
from tests.telephony.store.conftest import CALL_SID, HANDOFF_ID, ROUTING, FakeClock, make_package, make_record


def count(store: Store, model: type[Base]) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def counts(store: Store) -> dict[str, int]:
    return {model.__tablename__: count(store, model) for model in (Call, Turn, Prompt, Event, Handoff)}


def part(call: dict[str, object], name: str) -> list[dict[str, Any]]:
    """One of the call's lists (transcript, events, ...), typed for indexing."""
    rows = call[name]
    assert isinstance(rows, list)
    return rows


def test_a_saved_call_loads_back_equal(store: Store) -> None:
    record = make_record()
    store.save_call(record)
    assert store.load_call(CALL_SID) == record
    assert store.load_call("CA-unknown") is None


def test_saving_the_same_record_three_times_stores_it_once(store: Store) -> None:
    record = make_record()
    for _ in range(3):
        store.save_call(record)
    assert counts(store) == {"calls": 1, "turns": 3, "prompts": 2, "events": 3, "handoffs": 1}


def test_the_transfer_progress_comes_back_as_the_server_held_it(store: Store) -> None:
    record = make_record()
    record.progress.attempts.append(AttemptNote(attempt=1, target="+1555", dial_status="busy", outcome="busy"))
    record.progress.voicemail = VoicemailNote(url="https://r/RE1", duration_s=9)
    record.progress.answered_by[1] = "machine_start"
    store.save_call(record)
    loaded = store.load_call(CALL_SID)
    assert loaded is not None and loaded.progress == record.progress


def test_two_instances_saving_their_own_copies_of_one_call_lose_neither_ones_progress(store: Store) -> None:
    store.save_call(make_record())
    first, second = store.load_call(CALL_SID), store.load_call(CALL_SID)  # two instances, one call
    assert first is not None and second is not None
    first.progress.accepted.append(0)  # the agent pressed 1 here...
    first.progress.bridged = True
    first.progress.attempts.append(AttemptNote(attempt=0, target="+1555", dial_status="completed", outcome="bridged"))
    second.progress.caller_in_room = True  # ...while the caller entered the conference there
    second.progress.agent_legs[0] = "CA" + "4" * 32
    second.progress.attempts.append(AttemptNote(attempt=1, target="+1666", dial_status="busy", outcome="busy"))
    second.progress.target = "+1666"
    store.save_call(first)
    store.save_call(second)  # a copy from before the bridge: it must not undo it
    loaded = store.load_call(CALL_SID)
    assert loaded is not None
    progress = loaded.progress
    assert progress.bridged and progress.caller_in_room and progress.accepted == [0]
    assert progress.agent_legs == {0: "CA" + "4" * 32}
    assert [a.attempt for a in progress.attempts] == [0, 1]
    assert progress.target == "+1666"  # a value the saving copy has wins over the stored one


def test_a_stored_call_that_no_longer_fits_the_record_is_a_store_error(store: Store) -> None:
    store.save_call(make_record())
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE calls SET status = 'teleported'"))
    with pytest.raises(StoreError, match="no longer fits CallRecord") as caught:
        store.load_call(CALL_SID)
    assert caught.value.call_sid == CALL_SID
    assert store.get_call(CALL_SID) is not None  # the raw view still works


def test_a_grown_record_adds_only_what_is_new_and_updates_what_changed(store: Store) -> None:
    record = make_record(with_decision=False)
    record.status = "streaming"
    store.save_call(record)
    record.add_caller_turn("one more thing", 20_000, 21_000, 0.8, "vosk")
    record.prompts[1] = record.prompts[1].model_copy(update={"played": True, "heard_ms": 2100, "cut_off": False})
    record.note(21_000, "heard", confidence=0.8)
    record.status = "stream_ended"
    store.save_call(record)
    store.save_call(record)
    assert counts(store) == {"calls": 1, "turns": 4, "prompts": 2, "events": 4, "handoffs": 0}
    call = store.get_call(CALL_SID)
    assert call is not None
    assert call["status"] == "stream_ended"
    assert part(call, "transcript")[-1]["text"] == "one more thing"
    assert part(call, "prompts")[1]["heard_ms"] == 2100
    assert store.load_call(CALL_SID) == record


def test_a_thinner_copy_of_the_record_erases_nothing(store: Store) -> None:
    store.save_call(make_record())
    thin = make_record(with_decision=False)
    thin.account_sid = thin.caller = thin.stream_end = None
    thin.parameters, thin.progress = {}, TransferProgress()
    thin.latencies.clear()
    store.save_call(thin)
    loaded = store.load_call(CALL_SID)
    assert loaded == make_record()


def test_get_call_has_every_part_and_is_json_ready(store: Store, clock: FakeClock) -> None:
    store.save_call(make_record())
    store.record_dial_attempt(CALL_SID, HANDOFF_ID, 1, "phone", "+15550001111", dial_call_sid="CA-child-1")
    store.add_callback(CALL_SID, HANDOFF_ID, "+15551230003", "today 2-4pm", clock.now)
    store.save_voicemail(CALL_SID, HANDOFF_ID, recording_sid="RE1", recording_url="https://r/RE1", duration_s=12)
    store.log_event(CALL_SID, "dial_status", {"status": "no-answer"}, f"{CALL_SID}:dial:CA-child-1:no-answer")
    store.add_delivery("d1", HANDOFF_ID, "https://desk.example/hook", {"handoff_id": HANDOFF_ID})
    store.set_final_outcome(CALL_SID, "callback")

    call = store.get_call(CALL_SID)
    assert call is not None
    json.dumps(call)  # datetimes are ISO strings, JSON columns plain data
    assert call["final_outcome"] == "callback"
    assert call["caller"] == "+15551230003"
    assert call["created_at"] == "2025-06-02T09:30:00.250000+00:00"
    assert [t["speaker"] for t in part(call, "transcript")] == ["bot", "caller", "caller"]
    assert [p["prompt_id"] for p in part(call, "prompts")] == ["greeting", "transfer"]
    handoff = call["handoff"]
    assert isinstance(handoff, dict)
    assert (handoff["handoff_id"], handoff["status"], handoff["queue"]) == (HANDOFF_ID, "pending", "billing_disputes")
    assert handoff["routing"]["reasons"] == ROUTING["reasons"]
    assert handoff["routing"]["decision_reason"] == "refund_dispute"
    for name in ("dial_attempts", "callbacks", "voicemails", "deliveries"):
        assert len(part(call, name)) == 1, name
    assert [e["kind"] for e in part(call, "events")] == ["stream_started", "heard", "routed", "dial_status"]
    assert store.get_call("CA-unknown") is None


def test_a_second_store_on_the_same_database_sees_everything(store_url: str, store: Store) -> None:
    record = make_record()
    store.save_call(record)
    store.log_event(CALL_SID, "status", {"CallStatus": "in-progress"}, f"{CALL_SID}:status:in-progress")
    before = store.get_call(CALL_SID)
    store.close()

    restarted = Store(store_url)
    restarted.migrate()
    assert restarted.get_call(CALL_SID) == before
    assert not restarted.log_event(CALL_SID, "status", {"CallStatus": "in-progress"}, f"{CALL_SID}:status:in-progress")
    carried_on = restarted.load_call(CALL_SID)
    assert carried_on is not None
    carried_on.add_caller_turn("after the restart", 30_000, 31_000, 0.7, "vosk")
    carried_on.note(31_000, "heard", confidence=0.7)
    restarted.save_call(carried_on)
    assert counts(restarted) == {"calls": 1, "turns": 4, "prompts": 2, "events": 5, "handoffs": 1}
    restarted.close()


def test_save_call_keeps_a_handoff_status_that_moved_on(store: Store) -> None:
    store.save_call(make_record())
    assert store.set_handoff_status(HANDOFF_ID, "bridged")
    store.save_call(make_record())
    handoff = store.get_handoff(HANDOFF_ID)
    assert handoff is not None and handoff["status"] == "bridged"


def test_a_call_can_have_only_one_handoff(store: Store) -> None:
    store.save_call(make_record())
    with pytest.raises(StoreError, match="already has handoff") as caught:
        store.save_handoff(CALL_SID, make_package(handoff_id=f"{CALL_SID}-fallback"), {})
    assert caught.value.call_sid == CALL_SID and not caught.value.retryable
    with pytest.raises(StoreError, match="belongs to call"):
        store.save_handoff("CA-other", make_package(), {})


def test_a_failed_write_leaves_nothing_behind(store: Store) -> None:
    record = make_record()
    record.turns.append(TurnRecord(speaker="caller", text="x" * 10, start_ms=0, end_ms=1))
    store.save_handoff(CALL_SID, make_package(handoff_id="other-handoff"), {})
    with pytest.raises(StoreError):
        store.save_call(record)  # its decision's handoff clashes with the stored one, so nothing of it is kept
    assert counts(store) == {"calls": 1, "turns": 0, "prompts": 0, "events": 0, "handoffs": 1}


def statements_run(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the SQL of every statement run on `store` from now on: through SQLAlchemy (its cursor events) or on
    the driver's cursor (`DriverStatement`, which a call record's save uses)."""
    from sqlalchemy import event

    from telephony.store.driver import DriverStatement

    statements: list[str] = []

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", before)
    on_driver = DriverStatement._cursor

    def driver_cursor(self: DriverStatement, *args: Any, **kwargs: Any) -> Any:
        statements.append(self.sql)
        return on_driver(self, *args, **kwargs)

    monkeypatch.setattr(DriverStatement, "_cursor", driver_cursor)
    return statements


def inserted_into(statements: list[str]) -> list[str]:
    """The tables the INSERTs and UPSERTs among `statements` write to, in order."""
    return [s.split()[2].strip('"') for s in statements if s.lstrip().upper().startswith("INSERT INTO")]


def test_saving_again_writes_only_the_rows_that_changed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call is saved at every turn: the history already stored is not written again each time."""
    record = make_record(with_decision=False)
    store.save_call(record)
    run = statements_run(store, monkeypatch)
    store.save_call(record)
    assert [t for t in inserted_into(run) if t in ("turns", "prompts", "events")] == []
    record.add_caller_turn("one more thing", 20_000, 21_000, 0.8, "vosk")
    record.note(21_000, "heard", confidence=0.8)
    store.save_call(record)
    assert sorted(t for t in inserted_into(run) if t in ("turns", "prompts", "events")) == ["events", "turns"]
    assert store.load_call(CALL_SID) == record


def test_a_save_that_failed_is_written_whole_next_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    record = make_record(with_decision=False)
    store.save_call(record)
    record.add_caller_turn("one more thing", 20_000, 21_000, 0.8, "vosk")

    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("the disk is full")

    monkeypatch.setattr(store, "_claim_call_row", broken)
    with pytest.raises(StoreError):
        store.save_call(record)
    monkeypatch.undo()
    store.save_call(record)
    assert store.load_call(CALL_SID) == record


def test_a_saved_call_whose_row_was_deleted_since_gets_its_row_back_at_the_next_save(store: Store) -> None:
    record = make_record(with_decision=False)
    store.save_call(record)  # from now on this process only locks the row it knows it stored
    with store.engine.begin() as connection:
        connection.execute(delete(Call).where(Call.call_sid == CALL_SID))
    assert store.call_writer(CALL_SID) is None
    record.add_caller_turn("one more thing", 20_000, 21_000, 0.8, "vosk")
    store.save_call(record)
    assert store.call_writer(CALL_SID) == store.writer
    loaded = store.load_call(CALL_SID)
    assert loaded is not None and loaded.turns[-1].text == "one more thing"


def test_a_save_with_the_decision_already_stored_leaves_the_handoff_alone_until_the_decision_changes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record is saved again when the stream ends: its handoff, stored with the decision, is not rewritten."""
    record = make_record()
    store.save_call(record)
    run = statements_run(store, monkeypatch)
    record.status = "stream_ended"
    record.note(12_000, "stream_end", reason="server_closed")
    store.save_call(record)
    assert [statement for statement in run if "handoffs" in statement] == []
    assert record.decision is not None and record.decision.routing is not None
    moved = record.decision.routing.model_copy(update={"queue": "billing_priority"})
    record.decision = record.decision.model_copy(update={"routing": moved})
    store.save_call(record)
    assert any(statement.lstrip().upper().startswith("UPDATE HANDOFFS") for statement in run)
    handoff = store.get_handoff(HANDOFF_ID)
    assert handoff is not None and handoff["queue"] == "billing_priority"
