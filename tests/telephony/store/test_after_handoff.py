"""Twilio callbacks after a handoff, repeated and out of order, leave one row each: dial attempts, voicemails
(merged from two callbacks), callbacks, deliveries and the event log; concurrent writers all land, once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from telephony.store import Store, StoreError
from tests.telephony.store.conftest import CALL_SID, HANDOFF_ID, FakeClock


def test_a_repeated_dial_callback_updates_the_attempt_and_adds_none(store: Store) -> None:
    assert store.record_dial_attempt(CALL_SID, HANDOFF_ID, 1, "phone", "+15550001111")
    # the <Dial action> callback names the child call; Twilio may send it twice
    for _ in range(2):
        new = store.record_dial_attempt(
            CALL_SID, HANDOFF_ID, 1, "phone", "+15550001111",
            dial_call_sid="CA-child-1", outcome="no_answer", dial_status="no-answer", duration_s=0,
        )  # fmt: skip
        assert not new
    assert store.record_dial_attempt(CALL_SID, HANDOFF_ID, 2, "sip", "sip:desk@pbx.example", dial_call_sid="CA-child-2")
    # a late repeat of attempt 2's callback found by its DialCallSid alone; "pending" never undoes an outcome
    store.record_dial_attempt(CALL_SID, HANDOFF_ID, 2, "sip", "sip:desk@pbx.example", dial_call_sid="CA-child-2",
                              outcome="bridged", dial_status="completed", duration_s=310)  # fmt: skip
    store.record_dial_attempt(CALL_SID, HANDOFF_ID, 2, "sip", "sip:desk@pbx.example", dial_call_sid="CA-child-2")
    attempts = store.dial_attempts(CALL_SID)
    assert [
        (a["attempt_no"], a["dial_call_sid"], a["outcome"], a["dial_status"], a["duration_s"]) for a in attempts
    ] == [
        (1, "CA-child-1", "no_answer", "no-answer", 0),
        (2, "CA-child-2", "bridged", "completed", 310),
    ]


def test_a_dial_attempt_cannot_change_its_child_call_or_outcome_vocabulary(store: Store) -> None:
    store.record_dial_attempt(CALL_SID, HANDOFF_ID, 1, "phone", "+1555", dial_call_sid="CA-child-1")
    with pytest.raises(StoreError, match="already has DialCallSid CA-child-1"):
        store.record_dial_attempt(CALL_SID, HANDOFF_ID, 1, "phone", "+1555", dial_call_sid="CA-child-9")
    with pytest.raises(StoreError, match="recorded for another call"):
        store.record_dial_attempt("CA-other", None, 1, "phone", "+1555", dial_call_sid="CA-child-1")
    with pytest.raises(StoreError, match="unknown dial outcome 'answered'"):
        store.record_dial_attempt(CALL_SID, HANDOFF_ID, 3, "phone", "+1555", outcome="answered")


RECORD_ACTION = {"recording_url": "https://api.twilio.com/RE1", "duration_s": 14}  # no RecordingSid there
STATUS_CALLBACK = {"recording_sid": "RE1", "recording_url": "https://api.twilio.com/RE1", "duration_s": 15}


@pytest.mark.parametrize("order", [(RECORD_ACTION, STATUS_CALLBACK), (STATUS_CALLBACK, RECORD_ACTION)])
def test_the_two_voicemail_callbacks_merge_into_one_row_in_either_order(
    store: Store, order: tuple[dict[str, object], ...]
) -> None:
    first, second = order
    assert store.save_voicemail(CALL_SID, HANDOFF_ID, **first)  # type: ignore[arg-type]
    for _ in range(2):
        assert not store.save_voicemail(CALL_SID, None, **second)  # type: ignore[arg-type]
    assert not store.save_voicemail(CALL_SID, None, transcript="Please call me back about the refund.")
    [voicemail] = store.voicemails(CALL_SID)
    assert voicemail["recording_sid"] == "RE1"
    assert voicemail["recording_url"] == "https://api.twilio.com/RE1"
    assert voicemail["duration_s"] == second["duration_s"]  # the later report wins
    assert voicemail["handoff_id"] == HANDOFF_ID  # a missing value never erases a stored one
    assert voicemail["transcript"] == "Please call me back about the refund."


def test_a_recording_of_another_call_is_refused(store: Store) -> None:
    store.save_voicemail(CALL_SID, HANDOFF_ID, recording_sid="RE1")
    with pytest.raises(StoreError, match="another call"):
        store.save_voicemail("CA-other", None, recording_sid="RE1")


def test_a_callback_goes_from_requested_to_done(store: Store, clock: FakeClock) -> None:
    due = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
    callback_id, created = store.add_callback(CALL_SID, HANDOFF_ID, "+15551230003", "today 2-4pm", due)
    assert created
    assert store.add_callback(CALL_SID, HANDOFF_ID, "+15551230003", "later", due + timedelta(hours=1)) == (
        callback_id,
        False,
    )
    other_id, _ = store.add_callback("CA-other", None, "+15559998888", None, due + timedelta(hours=2))

    assert store.due_callbacks(due - timedelta(seconds=1)) == []
    [row] = store.due_callbacks(due)
    assert (row["id"], row["window"], row["status"], row["due_at"]) == (
        callback_id, "today 2-4pm", "requested", "2025-06-02T14:00:00+00:00"
    )  # fmt: skip
    assert [c["id"] for c in store.due_callbacks(due + timedelta(days=1))] == [callback_id, other_id]

    assert store.mark_callback(callback_id, "dialing")
    assert [c["id"] for c in store.due_callbacks(due + timedelta(days=1))] == [other_id]
    assert [c["id"] for c in store.list_callbacks("dialing")] == [callback_id]
    assert store.mark_callback(callback_id, "done", notes="reached the caller")
    [done] = store.list_callbacks("done")
    assert done["notes"] == "reached the caller"
    assert isinstance(done["done_at"], str) and done["done_at"].startswith("2025-06-02T09:35")
    assert len(store.list_callbacks()) == 2
    assert not store.mark_callback(9999, "done")
    with pytest.raises(StoreError, match="unknown callback status"):
        store.mark_callback(callback_id, "maybe")


def test_callback_times_must_be_timezone_aware(store: Store) -> None:
    naive = datetime(2025, 6, 2, 14, 0)  # no tzinfo: the point of the test
    with pytest.raises(StoreError, match="timezone-aware"):
        store.add_callback(CALL_SID, None, "+1555", None, naive)
    with pytest.raises(StoreError, match="timezone-aware"):
        store.due_callbacks(naive)


def test_a_repeated_callback_is_detected_by_its_idempotency_key(store: Store) -> None:
    key = f"{CALL_SID}:status:completed"
    assert store.log_event(CALL_SID, "call_status", {"CallStatus": "completed"}, key, t_ms=120_000)
    assert not store.log_event(CALL_SID, "call_status", {"CallStatus": "completed"}, key, t_ms=120_000)
    assert store.log_event(CALL_SID, "note", {"free": "form"})  # no key: always appended
    assert store.log_event(CALL_SID, "note", {"free": "form"})
    events = store.events(CALL_SID)
    assert [(e["kind"], e["idempotency_key"]) for e in events] == [
        ("call_status", key), ("note", None), ("note", None)
    ]  # fmt: skip
    assert events[0]["detail"] == {"CallStatus": "completed"} and events[0]["t_ms"] == 120_000


def test_deliveries_are_logged_updated_and_listed(store: Store) -> None:
    store.add_delivery("d1", HANDOFF_ID, "https://desk.example/hook", {"handoff_id": HANDOFF_ID, "n": [1, 2]})
    store.add_delivery("d1", HANDOFF_ID, "https://elsewhere.example", {"other": True})  # a repeat changes nothing
    store.add_delivery("d2", HANDOFF_ID, "https://crm.example/hook", {"handoff_id": HANDOFF_ID})
    store.update_delivery("d1", "pending", 1, "HTTP 503")
    store.update_delivery("d1", "delivered", 2)
    store.update_delivery("d2", "failed", 5, "HTTP 500")
    d1 = store.get_delivery("d1")
    assert d1 is not None
    assert (d1["url"], d1["status"], d1["attempts"], d1["last_error"]) == (
        "https://desk.example/hook", "delivered", 2, None
    )  # fmt: skip
    assert d1["payload"] == {"handoff_id": HANDOFF_ID, "n": [1, 2]}
    assert [d["delivery_id"] for d in store.deliveries()] == ["d1", "d2"]
    assert [d["delivery_id"] for d in store.deliveries("failed")] == ["d2"]
    assert store.get_delivery("nope") is None
    with pytest.raises(StoreError, match="no delivery"):
        store.update_delivery("nope", "failed", 1)
    with pytest.raises(StoreError, match="unknown delivery status"):
        store.update_delivery("d1", "lost", 1)


def in_threads(work: Callable[[int], list[bool]], threads: int = 4) -> list[bool]:
    """Run `work(thread_no)` in `threads` threads that start together; all their results, flattened."""
    barrier = threading.Barrier(threads)

    def run(n: int) -> list[bool]:
        barrier.wait()
        return work(n)

    with ThreadPoolExecutor(threads) as pool:
        return [result for results in pool.map(run, range(threads)) for result in results]


def test_concurrent_event_writes_all_land_once(store: Store) -> None:
    def work(n: int) -> list[bool]:
        results = [store.log_event(CALL_SID, "tick", {"thread": n, "i": i}, f"t{n}:{i}") for i in range(25)]
        results.append(store.log_event(CALL_SID, "shared", {"thread": n}, "shared-key"))  # Twilio's retry race
        return results

    results = in_threads(work)
    assert results.count(True) == 4 * 25 + 1
    events = store.events(CALL_SID)
    assert len(events) == 101
    assert {e["idempotency_key"] for e in events} == {f"t{n}:{i}" for n in range(4) for i in range(25)} | {"shared-key"}


def test_the_same_callback_from_four_threads_is_one_attempt_and_one_voicemail(store: Store) -> None:
    def work(n: int) -> list[bool]:
        return [
            store.record_dial_attempt(CALL_SID, HANDOFF_ID, 1, "phone", "+1555", dial_call_sid="CA-child-1",
                                      outcome="busy", dial_status="busy"),
            store.save_voicemail(CALL_SID, HANDOFF_ID, recording_sid="RE1", duration_s=n),
        ]  # fmt: skip

    results = in_threads(work)
    assert results[0::2].count(True) == 1 and results[1::2].count(True) == 1
    assert len(store.dial_attempts(CALL_SID)) == 1
    assert len(store.voicemails(CALL_SID)) == 1
