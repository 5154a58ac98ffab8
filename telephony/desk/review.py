"""The review report: where handoffs hit dead ends, why avoidable ones happened, and what agents say about the
summaries, by queue and by summary field. Pure: the store's `ReviewedHandoff` facts in, a report out, rendered
as Markdown for people and JSON for tools.

The seed article's review cycle reads the report: mark avoidable against necessary transfers, find repeated
dead ends (the same prompt asked again, late escalation), compare agent feedback on summary quality and routing,
then tune one layer at a time.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field

from dialogs.actions import asks_again, prompt_key
from telephony.store.review_records import AgentFeedback, ReviewedHandoff

LATE_AFTER_FAILED_TURNS = 3  # a handoff after this many failed turns came late
TOP = 10


@dataclass(frozen=True)
class DeadEnd:
    """One call that went round in circles: a prompt asked again, or a handoff after many failed turns."""

    handoff_id: str
    call_sid: str
    kind: str  # repeated_prompt | late_escalation
    detail: str


@dataclass(frozen=True)
class AvoidableReason:
    """An avoidable transfer's reason (category / trigger) and the layer the reviewers blamed, with a count."""

    category: str
    trigger: str
    layer: str
    count: int
    notes: tuple[str, ...]


@dataclass(frozen=True)
class QueueFeedback:
    """What agents of one queue said about the summaries they were given."""

    wrapups: int
    summary_rating_mean: float | None
    resolved_rate: float | None
    restatement_rate: float | None
    wrong_queue_rate: float | None


@dataclass(frozen=True)
class FieldFeedback:
    """How often agents flagged one part of the summary, and what they named most."""

    flagged: int
    share: float | None
    top_mentions: tuple[tuple[str, int], ...]


@dataclass
class ReviewReport:
    """The report of one window's handoffs."""

    handoffs: int = 0
    reviewed: int = 0
    avoidable: int = 0
    necessary: int = 0
    avoidable_rate: float | None = None
    dead_ends: list[DeadEnd] = field(default_factory=list)
    repeated_prompts: dict[str, int] = field(default_factory=dict)  # prompt -> calls that heard it twice or more
    late_escalations: int = 0
    top_avoidable: list[AvoidableReason] = field(default_factory=list)
    avoidable_by_layer: dict[str, int] = field(default_factory=dict)
    feedback_by_queue: dict[str, QueueFeedback] = field(default_factory=dict)
    feedback_by_field: dict[str, FieldFeedback] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def dead_ends(handoff: ReviewedHandoff) -> list[DeadEnd]:
    """The call's dead ends: each prompt heard twice or more, and a handoff after too many failed turns."""
    found = []
    heard = Counter(prompt_key(p) for p in handoff.prompt_ids)
    for prompt, times in sorted(heard.items()):
        if times >= 2:
            found.append(DeadEnd(handoff.handoff_id, handoff.call_sid, "repeated_prompt", f"{prompt} x{times}"))
    failed = sum(1 for p in handoff.prompt_ids if asks_again(p))
    if failed >= LATE_AFTER_FAILED_TURNS:
        detail = f"handed off after {failed} failed turns ({handoff.category}/{handoff.trigger})"
        found.append(DeadEnd(handoff.handoff_id, handoff.call_sid, "late_escalation", detail))
    return found


def _queue_feedback(feedback: list[AgentFeedback]) -> QueueFeedback:
    n = len(feedback)
    ratings = [f.summary_rating for f in feedback]
    return QueueFeedback(
        n, round(statistics.fmean(ratings), 2) if ratings else None, _rate(sum(f.resolved for f in feedback), n),
        _rate(sum(f.had_to_repeat for f in feedback), n), _rate(sum(f.wrong_queue for f in feedback), n),
    )  # fmt: skip


def _mentions(texts: list[str]) -> tuple[tuple[str, int], ...]:
    """What agents named, split on commas and semicolons, compared without case."""
    said = Counter(part.strip().lower() for text in texts for part in re.split(r"[,;\n]", text) if part.strip())
    return tuple(sorted(said.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP])


def _field_feedback(feedback: list[AgentFeedback]) -> dict[str, FieldFeedback]:
    """Each part of the summary an agent can fault: facts missing or wrong, a fact re-asked, the queue."""
    n = len(feedback)
    parts: dict[str, list[str | None]] = {
        "key_facts_missing": [f.missing_facts for f in feedback if f.missing_facts],
        "key_facts_wrong": [f.wrong_facts for f in feedback if f.wrong_facts],
        "caller_had_to_repeat": [f.repeated_fact or "" for f in feedback if f.had_to_repeat],
        "recommended_queue": [f.right_queue or "" for f in feedback if f.wrong_queue],
    }
    return {
        name: FieldFeedback(len(flags), _rate(len(flags), n), _mentions([t for t in flags if t]))
        for name, flags in parts.items()
    }


def review_report(handoffs: list[ReviewedHandoff]) -> ReviewReport:
    """The report of these handoffs (pure: no database)."""
    report = ReviewReport(handoffs=len(handoffs))
    for handoff in handoffs:
        report.dead_ends.extend(dead_ends(handoff))
    report.repeated_prompts = dict(
        Counter(d.detail.split(" x")[0] for d in report.dead_ends if d.kind == "repeated_prompt").most_common()
    )
    report.late_escalations = sum(1 for d in report.dead_ends if d.kind == "late_escalation")
    verdicts = [h for h in handoffs if h.verdict is not None]
    avoidable = [h for h in verdicts if h.verdict is not None and h.verdict.verdict == "avoidable"]
    report.reviewed, report.avoidable = len(verdicts), len(avoidable)
    report.necessary = report.reviewed - report.avoidable
    report.avoidable_rate = _rate(report.avoidable, report.reviewed)
    reasons: dict[tuple[str, str, str], list[str]] = {}
    for h in avoidable:
        layer, note = (h.verdict.layer, h.verdict.note) if h.verdict is not None else (None, None)
        reasons.setdefault((h.category, h.trigger, layer or "unmarked"), []).append(note or "")
    report.top_avoidable = [
        AvoidableReason(category, trigger, layer, len(notes), tuple(n for n in notes if n)[:3])
        for (category, trigger, layer), notes in sorted(reasons.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ][:TOP]
    report.avoidable_by_layer = dict(
        Counter((h.verdict.layer if h.verdict else None) or "unmarked" for h in avoidable).most_common()
    )
    wrapped = [(h.queue, h.feedback) for h in handoffs if h.feedback is not None]
    by_queue: dict[str, list[AgentFeedback]] = {}
    for queue, feedback in wrapped:
        by_queue.setdefault(queue, []).append(feedback)
    report.feedback_by_queue = {queue: _queue_feedback(items) for queue, items in sorted(by_queue.items())}
    report.feedback_by_field = _field_feedback([feedback for _, feedback in wrapped])
    return report


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def as_markdown(report: ReviewReport, title: str = "Handoff review") -> str:
    """The report for people: headline, dead ends, avoidable reasons, agent feedback."""
    lines = [
        f"# {title}", "",
        f"{report.handoffs} handoffs; {report.reviewed} reviewed: {report.avoidable} avoidable, "
        f"{report.necessary} necessary (avoidable rate {_pct(report.avoidable_rate)}).", "",
        "## Dead ends", "",
        f"- Late escalation (a handoff after {LATE_AFTER_FAILED_TURNS} or more failed turns): "
        f"{report.late_escalations} calls",
    ]  # fmt: skip
    lines += [f"- Prompt asked again: `{p}` in {n} calls" for p, n in report.repeated_prompts.items()]
    lines += ["", "| Call | Handoff | Dead end | Detail |", "|---|---|---|---|"]
    lines += [f"| {d.call_sid} | {d.handoff_id} | {d.kind} | {d.detail} |" for d in report.dead_ends[:50]]
    lines += [
        "",
        "## Top avoidable reasons",
        "",
        "| Category | Trigger | Layer | Count | Notes |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.category} | {r.trigger} | {r.layer} | {r.count} | {'; '.join(r.notes)} |" for r in report.top_avoidable
    ]
    lines += [
        "",
        "Avoidable by layer: " + (", ".join(f"{k} {v}" for k, v in report.avoidable_by_layer.items()) or "none"),
    ]
    lines += ["", "## Agent feedback by queue", ""]
    lines += [
        "| Queue | Wrap-ups | Summary rating | Resolved | Had to repeat | Wrong queue |",
        "|---|---|---|---|---|---|",
    ]
    for queue, q in report.feedback_by_queue.items():
        rating = "n/a" if q.summary_rating_mean is None else f"{q.summary_rating_mean:.2f}"
        lines.append(
            f"| {queue} | {q.wrapups} | {rating} | {_pct(q.resolved_rate)} | {_pct(q.restatement_rate)} "
            f"| {_pct(q.wrong_queue_rate)} |"
        )
    lines += [
        "",
        "## Agent feedback by summary field",
        "",
        "| Field | Flagged | Share | Most named |",
        "|---|---|---|---|",
    ]
    for name, f in report.feedback_by_field.items():
        named = ", ".join(f"{m} ({n})" for m, n in f.top_mentions)
        lines.append(f"| {name} | {f.flagged} | {_pct(f.share)} | {named} |")
    return "\n".join(lines) + "\n"
