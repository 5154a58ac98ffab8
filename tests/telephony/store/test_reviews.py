"""Reviewers' verdicts: one per handoff (marking again replaces it), checked values, a sample across the busiest
categories, the report's facts, and the avoidable-transfer rate in the analytics; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialogs.package import EscalationReason
from telephony.calls.records import PromptRecord
from telephony.store import Store, StoreError
from telephony.store.analytics import figures
from telephony.store.review_records import Verdict
from tests.telephony.store.conftest import FakeClock, make_package, make_record


def _handoff(store: Store, n: int, category: str, trigger: str = "t", *, prompts: tuple[str, ...] = ()) -> str:
    sid, hid = f"CA{n:032d}", f"CA{n:032d}-h1"
    record = make_record(sid)
    assert record.decision is not None
    reason = EscalationReason(category=category, trigger=trigger, detail="d")  # type: ignore[arg-type]
    record.decision.package = make_package(sid, hid, reason=reason)
    for i, prompt_id in enumerate(prompts):
        record.prompts.append(
            PromptRecord(
                prompt_id=prompt_id, mark=f"p{i}", text="again", cached=False, play_start_ms=20_000 + i, duration_ms=1
            )
        )
    store.save_call(record)
    return hid


def test_a_second_verdict_replaces_the_first_and_bad_values_are_refused(store: Store) -> None:
    hid = _handoff(store, 1, "distress")
    store.save_review(hid, "rae", Verdict("avoidable", "prompt", "asked twice", None))
    saved = store.save_review(hid, "rae", Verdict("necessary"))
    assert (saved["verdict"], saved["layer"], saved["note"]) == ("necessary", None, None)
    assert store.review(hid) == saved
    with pytest.raises(StoreError, match="verdict"):
        store.save_review(hid, "rae", Verdict("maybe"))
    with pytest.raises(StoreError, match="layer"):
        store.save_review(hid, "rae", Verdict("avoidable", "the weather"))
    with pytest.raises(StoreError, match="expected_queue"):
        store.save_review(hid, "rae", Verdict("necessary", None, None, "billing"))
    with pytest.raises(StoreError, match="no handoff"):
        store.save_review("nope", "rae", Verdict("necessary"))


def test_the_sample_takes_the_newest_of_each_category_busiest_first_and_skips_reviewed(
    store: Store, clock: FakeClock
) -> None:
    start = clock.now
    ids = {}
    for n, category in enumerate(["distress", "high_value", "distress", "distress", "high_value", "capability_gap"]):
        clock.advance(minutes=1)
        ids[n] = _handoff(store, n, category)
    window = (start, clock.now + timedelta(hours=1))
    picked = store.review_sample(*window, per_category=2)
    assert [c.handoff_id for c in picked] == [ids[3], ids[2], ids[4], ids[1], ids[5]]
    store.save_review(ids[3], "rae", Verdict("necessary"))
    assert [c.handoff_id for c in store.review_sample(*window, per_category=2)][:2] == [ids[2], ids[0]]
    everything = store.review_sample(*window, per_category=2, include_reviewed=True)
    assert [(c.handoff_id, c.verdict) for c in everything][:1] == [(ids[3], "necessary")]
    assert store.review_sample(clock.now + timedelta(hours=2), clock.now + timedelta(hours=3), 5) == []


def test_the_report_facts_carry_prompts_verdicts_and_wrapups_and_analytics_count_avoidable(
    store: Store, clock: FakeClock
) -> None:
    start = clock.now - timedelta(days=3650)
    a = _handoff(store, 1, "distress", prompts=("clarify", "clarify:short"))
    b = _handoff(store, 2, "high_value")
    c = _handoff(store, 3, "high_value")
    store.save_review(a, "rae", Verdict("avoidable", "prompt", "asked twice", "orders"))
    store.save_review(b, "rae", Verdict("necessary"))
    fields = {"disposition": "resolved", "resolved": True, "summary_rating": 4, "had_to_repeat": True}
    store.save_wrapup(c, None, "ada", fields)
    facts = {f.handoff_id: f for f in store.review_facts(start, clock.now + timedelta(days=1))}
    assert facts[a].prompt_ids[-2:] == ("clarify", "clarify:short")
    assert facts[a].verdict == Verdict("avoidable", "prompt", "asked twice", "orders")
    assert facts[c].verdict is None and facts[c].feedback is not None and facts[c].feedback.had_to_repeat
    got = figures(store.analytics_facts(start, clock.now + timedelta(days=1)))
    assert (got.reviewed, got.avoidable_rate) == (2, 0.5)
