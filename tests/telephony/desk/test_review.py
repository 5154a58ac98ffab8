"""The review report on hand-made facts: dead ends, avoidable reasons by layer, agent feedback by queue and by
summary field, and its Markdown."""

from __future__ import annotations

from telephony.desk.review import as_markdown, dead_ends, review_report
from telephony.store.review_records import AgentFeedback, ReviewedHandoff, Verdict


def handoff(n: int, queue: str = "orders", prompts: tuple[str, ...] = (), verdict: Verdict | None = None,
            feedback: AgentFeedback | None = None, category: str = "distress") -> ReviewedHandoff:  # fmt: skip
    return ReviewedHandoff(f"h{n}", f"CA{n}", category, "repeated_failure", queue, prompts, verdict, feedback)


def feedback(rating: int, *, repeat: str | None = None, missing: str | None = None, wrong_queue: str | None = None,
             resolved: bool = True) -> AgentFeedback:  # fmt: skip
    return AgentFeedback(
        rating, resolved, repeat is not None, repeat, missing, None, wrong_queue is not None, wrong_queue
    )


def test_a_prompt_heard_twice_and_three_failed_turns_are_dead_ends() -> None:
    looping = handoff(1, prompts=("greeting", "clarify", "slot_again:order_number", "slot_again:order_number:short",
                                  "no_input", "handoff:orders"))  # fmt: skip
    found = dead_ends(looping)
    assert [(d.kind, d.detail.split(" (")[0]) for d in found] == [
        ("repeated_prompt", "slot_again:order_number x2"),
        ("late_escalation", "handed off after 4 failed turns"),
    ]
    assert dead_ends(handoff(2, prompts=("greeting", "clarify", "handoff:orders"))) == []


def test_avoidable_reasons_are_ranked_with_their_layer_and_notes() -> None:
    facts = [
        handoff(1, verdict=Verdict("avoidable", "prompt", "asked the number twice")),
        handoff(2, verdict=Verdict("avoidable", "prompt", "same again")),
        handoff(3, verdict=Verdict("avoidable", "routing"), category="high_value"),
        handoff(4, verdict=Verdict("necessary")),
        handoff(5),
    ]
    report = review_report(facts)
    assert (report.handoffs, report.reviewed, report.avoidable, report.necessary) == (5, 4, 3, 1)
    assert report.avoidable_rate == 0.75
    top = report.top_avoidable[0]
    assert (top.category, top.layer, top.count, top.notes) == (
        "distress", "prompt", 2, ("asked the number twice", "same again"),
    )  # fmt: skip
    assert report.avoidable_by_layer == {"prompt": 2, "routing": 1}


def test_agent_feedback_is_split_by_queue_and_by_summary_field() -> None:
    facts = [
        handoff(1, "orders", feedback=feedback(4, repeat="order number", missing="Order number; delivery date")),
        handoff(2, "orders", feedback=feedback(2, missing="order number", resolved=False)),
        handoff(3, "billing", feedback=feedback(5, wrong_queue="orders")),
        handoff(4, "billing"),
    ]
    report = review_report(facts)
    orders, billing = report.feedback_by_queue["orders"], report.feedback_by_queue["billing"]
    assert (orders.wrapups, orders.summary_rating_mean, orders.resolved_rate, orders.restatement_rate) == (
        2,
        3.0,
        0.5,
        0.5,
    )
    assert (billing.wrapups, billing.wrong_queue_rate) == (1, 1.0)
    missing = report.feedback_by_field["key_facts_missing"]
    assert (missing.flagged, missing.share, missing.top_mentions[0]) == (2, round(2 / 3, 4), ("order number", 2))
    assert report.feedback_by_field["recommended_queue"].top_mentions == (("orders", 1),)
    text = as_markdown(report, "Week 48")
    assert text.startswith("# Week 48") and "| orders | 2 | 3.00 | 50% | 50% | 0% |" in text
