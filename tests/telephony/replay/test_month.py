"""A generated month of calls, replayed through the real dialog and desk, shows in the analytics and the review
report exactly what its plan and its feedback say; on SQLite and on PostgreSQL."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from telephony.desk.review import review_report
from telephony.replay.month import make_month, plan_month
from telephony.server.settings import Settings
from telephony.store import Store
from telephony.store.analytics import figures

SCENARIOS = Path(__file__).resolve().parents[3] / "audio_fixtures" / "scenarios"
START = datetime(2026, 10, 1, tzinfo=UTC)


def test_the_same_seed_plans_the_same_month_in_opening_hours_on_weekdays() -> None:
    first = plan_month(SCENARIOS, START, days=30, calls=60, seed=3, callers=10)
    again = plan_month(SCENARIOS, START, days=30, calls=60, seed=3, callers=10)
    assert [(p.template, p.scenario.at, p.scenario.call.from_number) for p in first] == [
        (p.template, p.scenario.at, p.scenario.call.from_number) for p in again
    ]
    assert all(p.scenario.at.weekday() < 5 and 14 <= p.scenario.at.hour < 21 for p in first)
    assert [p.scenario.at for p in first] == sorted(p.scenario.at for p in first)
    other = plan_month(SCENARIOS, START, days=30, calls=60, seed=4, callers=10)
    assert [p.template for p in other] != [p.template for p in first]
    assert {p.ends_with for p in first} == {"handoff", "end"}


@pytest.mark.slow
async def test_a_generated_month_shows_its_known_figures(store_url: str, tmp_path: Path) -> None:
    plan = plan_month(SCENARIOS, START, days=14, calls=24, seed=11, callers=5)
    settings = Settings(tts_cache_dir=tmp_path / "tts", data_dir=tmp_path / "data", database_url=store_url,
                        _env_file=None)  # type: ignore[call-arg]  # fmt: skip
    truth, broken = await make_month(plan, settings, seed=11)
    assert broken == []
    store = Store(store_url)
    try:
        window = (START, START + timedelta(days=31))
        got = figures(store.analytics_facts(*window))
        report = review_report(store.review_facts(*window))
    finally:
        store.close()
    assert (got.calls, got.handoffs) == (truth.calls, truth.handoffs) and truth.handoffs > 0
    assert got.by_category == dict(truth.by_category) and got.by_queue == dict(truth.by_queue)
    assert got.containment_24h == round(truth.contained_24h / truth.calls, 4)
    assert set(got.per_day) <= {(START + timedelta(days=d)).date().isoformat() for d in range(14)}
    nobody = sum(got.outcome_mix.get(k, 0) for k in ("busy", "no_answer", "declined"))
    assert truth.unanswered > 0 and nobody >= truth.unanswered  # each rang at least one agent who did not take it
    assert got.completion is not None and got.completion < 1.0 and got.outcome_mix["bridged"] > 0
    assert got.outcome_mix["handoff_callback"] == truth.unanswered  # the replayed caller takes the callback
    assert got.time_to_human_p50_s is not None and got.time_to_human_p50_s > 3
    assert got.restatement_rate == round(truth.had_to_repeat / truth.wrapups, 4)
    assert got.wrong_queue_rate == round(truth.wrong_queue / truth.wrapups, 4)
    assert got.summary_rating_mean == round(statistics.fmean(truth.ratings), 2)
    assert (got.reviewed, report.avoidable) == (truth.reviewed, truth.avoidable)
    assert got.avoidable_rate == (round(truth.avoidable / truth.reviewed, 4) if truth.reviewed else None)
    assert got.transfer_to_resolution_p50_s is not None and 60 <= got.transfer_to_resolution_p50_s <= 25 * 60
