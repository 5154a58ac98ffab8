"""What the review cycle keeps and reads: reviewers' verdicts on handoffs, a sample to review, and the facts
the review report is made from (the prompts each call heard, its verdict, the agent's wrap-up).

A verdict is keyed on its handoff: marking a handoff again replaces the verdict (a reviewer changing their
mind is one review, updated).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from telephony.store.errors import StoreError
from telephony.store.models import LAYERS, VERDICTS, Handoff, Prompt, Review, WrapUp
from telephony.store.transactions import Row, Transactions, require, require_aware


@dataclass(frozen=True)
class Verdict:
    """A reviewer's verdict, as the review form or CLI gives it."""

    verdict: str
    layer: str | None = None
    note: str | None = None
    expected_queue: str | None = None  # avoidable: the queue it should have reached; none: the bot should finish


@dataclass(frozen=True)
class ReviewCandidate:
    """A handoff offered for review, with its verdict when it already has one."""

    handoff_id: str
    call_sid: str
    at: datetime
    category: str
    trigger: str
    queue: str
    status: str
    primary_issue: str
    verdict: str | None


@dataclass(frozen=True)
class AgentFeedback:
    """The agent's wrap-up of a handoff, reduced to what the review report compares."""

    summary_rating: int
    resolved: bool
    had_to_repeat: bool
    repeated_fact: str | None
    missing_facts: str | None
    wrong_facts: str | None
    wrong_queue: bool
    right_queue: str | None


@dataclass(frozen=True)
class ReviewedHandoff:
    """One handoff as the review report sees it: where it went, what the caller heard, the verdict, the wrap-up."""

    handoff_id: str
    call_sid: str
    category: str
    trigger: str
    queue: str
    prompt_ids: tuple[str, ...]
    verdict: Verdict | None
    feedback: AgentFeedback | None


def check_verdict(verdict: Verdict) -> None:
    """A verdict names one of the known verdicts and layers; StoreError otherwise."""
    require(verdict.verdict, VERDICTS, "verdict")
    if verdict.layer is not None:
        require(verdict.layer, LAYERS, "layer")
    if verdict.verdict == "necessary" and verdict.expected_queue is not None:
        raise StoreError("a necessary transfer went where it should: expected_queue is for avoidable ones")


class ReviewRecords(Transactions):
    """Verdicts, the review sample and the report's facts; part of `Store`."""

    def save_review(self, handoff_id: str, reviewer: str, verdict: Verdict) -> Row:
        """Store a reviewer's verdict on a handoff (marking it again replaces the verdict)."""
        check_verdict(verdict)
        with self._tx("save_review") as s:
            handoff = s.get(Handoff, handoff_id)
            if handoff is None:
                raise StoreError(f"no handoff {handoff_id}")
            now = self._clock()
            review = s.scalar(select(Review).where(Review.handoff_id == handoff_id).with_for_update())
            if review is None:
                review = Review(handoff_id=handoff_id, call_sid=handoff.call_sid, created_at=now)
                s.add(review)
            review.reviewer, review.verdict, review.layer = reviewer, verdict.verdict, verdict.layer
            review.note, review.expected_queue, review.updated_at = verdict.note, verdict.expected_queue, now
            s.flush()
            return review.as_dict()

    def review(self, handoff_id: str) -> Row | None:
        with self._tx("review", read_only=True) as s:
            row = s.scalar(select(Review).where(Review.handoff_id == handoff_id))
            return row.as_dict() if row is not None else None

    def review_sample(
        self, since: datetime, until: datetime, per_category: int, *, include_reviewed: bool = False
    ) -> list[ReviewCandidate]:
        """The newest handoffs of each escalation category in the window, the busiest categories first."""
        require_aware(since, "since")
        require_aware(until, "until")
        with self._tx("review_sample", read_only=True) as s:
            rows = s.execute(
                select(Handoff, Review.verdict)
                .outerjoin(Review, Review.handoff_id == Handoff.handoff_id)
                .where(Handoff.created_at >= since, Handoff.created_at < until)
                .order_by(Handoff.created_at.desc(), Handoff.handoff_id)
            ).all()
        sizes = Counter(h.category for h, _ in rows)
        picked: dict[str, list[ReviewCandidate]] = {}
        for handoff, verdict in rows:
            chosen = picked.setdefault(handoff.category, [])
            if len(chosen) < per_category and (include_reviewed or verdict is None):
                chosen.append(_candidate(handoff, verdict))
        order = sorted(picked, key=lambda category: (-sizes[category], category))
        return [candidate for category in order for candidate in picked[category]]

    def review_facts(self, since: datetime, until: datetime) -> list[ReviewedHandoff]:
        """Every handoff of the window with the prompts its caller heard, its verdict and its wrap-up."""
        require_aware(since, "since")
        require_aware(until, "until")
        with self._tx("review_facts", read_only=True) as s:
            handoffs = list(
                s.scalars(
                    select(Handoff)
                    .where(Handoff.created_at >= since, Handoff.created_at < until)
                    .order_by(Handoff.created_at)
                )
            )
            sids = [h.call_sid for h in handoffs]
            prompts: dict[str, list[str]] = {}
            for sid, prompt_id in s.execute(
                select(Prompt.call_sid, Prompt.prompt_id).where(Prompt.call_sid.in_(sids)).order_by(Prompt.seq)
            ):
                prompts.setdefault(sid, []).append(prompt_id)
            ids = [h.handoff_id for h in handoffs]
            reviews = {r.handoff_id: r for r in s.scalars(select(Review).where(Review.handoff_id.in_(ids)))}
            wrapups = {w.handoff_id: w for w in s.scalars(select(WrapUp).where(WrapUp.handoff_id.in_(ids)))}
        return [
            ReviewedHandoff(
                h.handoff_id, h.call_sid, h.category, h.trigger, h.queue, tuple(prompts.get(h.call_sid, ())),
                _verdict(reviews.get(h.handoff_id)), _feedback(wrapups.get(h.handoff_id)),
            )
            for h in handoffs
        ]  # fmt: skip


def _candidate(handoff: Handoff, verdict: str | None) -> ReviewCandidate:
    package = handoff.package if isinstance(handoff.package, dict) else {}
    issue = package.get("primary_issue")
    return ReviewCandidate(
        handoff.handoff_id, handoff.call_sid, handoff.created_at, handoff.category, handoff.trigger, handoff.queue,
        handoff.status, issue if isinstance(issue, str) else "", verdict,
    )  # fmt: skip


def _verdict(review: Review | None) -> Verdict | None:
    if review is None:
        return None
    return Verdict(review.verdict, review.layer, review.note, review.expected_queue)


def _feedback(wrapup: WrapUp | None) -> AgentFeedback | None:
    if wrapup is None:
        return None
    return AgentFeedback(
        wrapup.summary_rating, wrapup.resolved, wrapup.had_to_repeat, wrapup.repeated_fact, wrapup.missing_facts,
        wrapup.wrong_facts, wrapup.wrong_queue, wrapup.right_queue,
    )  # fmt: skip
