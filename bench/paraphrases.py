"""How well the dialog understands callers it was not written for: the paraphrase set, clean and at seeded WER.

`tests/dialogs/paraphrases.yaml` holds caller first sentences written without looking at the bot pack, each
with the intent it is about (`none` for small talk or a bare request for a person) and the handoff it should
lead to (`null`: the bot serves it). Each sentence is said, as a caller's first turn, to a fresh
`DialogManager` with the pack, exactly as a call's session would say it; what the manager decides on that
turn is compared with the label:

- the intent: the manager's `state.intent` after the turn (None when it asked what the call is about);
- the trigger: the handoff it decided (a `HandOff` or the `Route` that precedes one), or, for a request for a
  person whose topic is unknown, the routing question it asked first (`explicit_request`).

With WER, each word is dropped or swapped for a short common word at that rate (the oracle ASR's seeded
noise, `voice.oracle.misrecognise`), with the confidence a recogniser would report; every seed is a new run.

The report: intent accuracy; recall of the safety triggers (a request for a person, distress, and the risk
triggers: the pack's risk_compliance rules); false handoffs on resolvable requests; and accuracy per intent
and per trigger (high-value and capability-gap triggers included).
`tests/dialogs/test_paraphrases.py` holds the goals:

| measure | clean | 15 % WER |
|---|---|---|
| intent accuracy | ≥ 90 % | ≥ 85 % |
| safety-trigger recall | ≥ 98 % | ≥ 95 % |
| false handoffs on resolvable requests | ≤ 5 % | ≤ 5 % |

Run it from the repository root::

    python bench/paraphrases.py                     # clean, 15 % and 25 % WER, 8 seeds each
    python bench/paraphrases.py --misses            # and list every miss
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from dialogs.actions import HandOff, Route  # noqa: E402
from dialogs.events import CallerSaid, CallStarted  # noqa: E402
from dialogs.manager import DialogManager  # noqa: E402
from dialogs.pack import BotPack, load_pack  # noqa: E402
from dialogs.state import CallState, Waiting  # noqa: E402
from voice.oracle import misrecognise  # noqa: E402

PARAPHRASES = REPO_ROOT / "tests" / "dialogs" / "paraphrases.yaml"
CALLER = "+15551230000"
SPOKEN_CONFIDENCE = 0.9  # what the recogniser reports for a word it heard right
PERSON, DISTRESS = "explicit_request", "distress_marker"


class Paraphrase(BaseModel):
    """One labelled caller sentence."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    text: str = Field(min_length=1)
    intent: str
    handoff: str | None
    tags: list[str] = Field(default_factory=list)

    @property
    def expected_intent(self) -> str | None:
        return None if self.intent == "none" else self.intent


def load_paraphrases(path: Path = PARAPHRASES) -> list[Paraphrase]:
    return [Paraphrase.model_validate(entry) for entry in yaml.safe_load(path.read_text(encoding="utf-8"))]


@dataclass(frozen=True)
class Outcome:
    """What the dialog decided on the caller's first turn."""

    intent: str | None
    trigger: str | None
    heard: str


def first_turn(pack: BotPack, text: str, wer: float = 0.0, rng: random.Random | None = None) -> Outcome:
    """Say `text` (misrecognised at `wer`) as a caller's first turn; what the dialog made of it."""
    words = misrecognise(text.split(), SPOKEN_CONFIDENCE, wer, rng or random.Random(0))
    heard = " ".join(w for w, _ in words)
    confidence = sum(c for _, c in words) / len(words) if words else 0.0
    dialog = DialogManager(pack, CallState(call_sid="CA" + "0" * 32))
    dialog.handle(CallStarted(call_sid=dialog.state.call_sid, caller=CALLER, called=None))
    actions = dialog.handle(CallerSaid(heard, confidence, 1000, 3000, 3000))
    trigger = next((a.package.reason.trigger for a in actions if isinstance(a, HandOff | Route)), None)
    state = dialog.state
    if trigger is None and state.waiting is Waiting.ROUTING_QUESTION and state.routing_reason is not None:
        trigger = state.routing_reason.trigger
    return Outcome(state.intent, trigger, heard)


def risk_triggers(pack: BotPack) -> frozenset[str]:
    """The risk triggers: of the pack's rules, those filed under risk_compliance (disputes, security, account
    changes, legal threats, payments, damaged goods). High value (cancellation, a sales lead) and capability
    gaps (a question without an approved answer) are measured per trigger, not as safety."""
    policy = pack.policy
    rules = [
        *((i.escalate.category, i.escalate.trigger) for i in pack.intents if i.escalate is not None),
        *((s.category, s.trigger) for s in policy.intent_switches),
        *((e.category, e.trigger) for e in policy.exceptions),
    ]
    return frozenset(trigger for category, trigger in rules if category == "risk_compliance")


@dataclass
class Report:
    """One run over the set at one WER (all seeds pooled)."""

    wer: float
    seeds: int
    intent_right: Counter[str] = field(default_factory=Counter)
    intent_total: Counter[str] = field(default_factory=Counter)
    trigger_right: Counter[str] = field(default_factory=Counter)
    trigger_total: Counter[str] = field(default_factory=Counter)
    resolvable: int = 0
    false_handoffs: int = 0
    safety: frozenset[str] = frozenset()
    misses: list[tuple[Paraphrase, Outcome]] = field(default_factory=list)
    ms_per_turn: float = 0.0

    @property
    def intent_accuracy(self) -> float:
        return _ratio(sum(self.intent_right.values()), sum(self.intent_total.values()))

    @property
    def safety_recall(self) -> float:
        right = sum(self.trigger_right[t] for t in self.safety)
        return _ratio(right, sum(self.trigger_total[t] for t in self.safety))

    def recall(self, trigger: str) -> float:
        return _ratio(self.trigger_right[trigger], self.trigger_total[trigger])

    @property
    def false_handoff_rate(self) -> float:
        return _ratio(self.false_handoffs, self.resolvable)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def evaluate(pack: BotPack, items: Sequence[Paraphrase], wer: float = 0.0, seeds: int = 1) -> Report:
    """Every sentence as a first turn, `seeds` times (each a different misrecognition) when `wer` > 0."""
    runs = seeds if wer > 0 else 1
    report = Report(wer, runs, safety=risk_triggers(pack) | {PERSON, DISTRESS})
    started = time.perf_counter()
    for seed in range(runs):
        for index, item in enumerate(items):
            outcome = first_turn(pack, item.text, wer, random.Random(seed * 100_003 + index))
            _score(report, item, outcome)
    report.ms_per_turn = (time.perf_counter() - started) * 1000 / (runs * len(items))
    return report


def _score(report: Report, item: Paraphrase, outcome: Outcome) -> None:
    intent_label = item.intent
    intent_ok = outcome.intent == item.expected_intent
    report.intent_total[intent_label] += 1
    report.intent_right[intent_label] += intent_ok
    trigger_label = item.handoff or "none"
    trigger_ok = outcome.trigger == item.handoff
    report.trigger_total[trigger_label] += 1
    report.trigger_right[trigger_label] += trigger_ok
    if item.handoff is None and item.expected_intent is not None:
        report.resolvable += 1
        report.false_handoffs += outcome.trigger is not None
    if not (intent_ok and trigger_ok):
        report.misses.append((item, outcome))


# --- report -----------------------------------------------------------------------------------------------


def print_summary(console: Console, reports: Sequence[Report]) -> None:
    table = Table(title="The dialog on the paraphrase set (first turns)")
    for column in ("WER", "runs", "intent accuracy", "safety-trigger recall", "false handoffs", "ms a turn"):
        table.add_column(column, justify="right")
    for r in reports:
        table.add_row(
            f"{r.wer:.0%}", str(r.seeds), f"{r.intent_accuracy:.1%}", f"{r.safety_recall:.1%}",
            f"{r.false_handoff_rate:.1%} ({r.false_handoffs}/{r.resolvable})",
            f"{r.ms_per_turn:.2f}",
        )  # fmt: skip
    console.print(table)


def print_breakdown(console: Console, reports: Sequence[Report], kind: str) -> None:
    right = "intent_right" if kind == "intent" else "trigger_right"
    total = "intent_total" if kind == "intent" else "trigger_total"
    table = Table(title=f"Accuracy per {kind}")
    table.add_column(kind)
    table.add_column("n", justify="right")
    for r in reports:
        table.add_column(f"{r.wer:.0%} WER", justify="right")
    labels = sorted(getattr(reports[0], total))
    for label in labels:
        cells = [f"{getattr(r, right)[label] / getattr(r, total)[label]:.0%}" for r in reports]
        table.add_row(label, str(getattr(reports[0], total)[label]), *cells)
    console.print(table)


def print_misses(console: Console, report: Report) -> None:
    grouped: dict[str, list[str]] = defaultdict(list)
    for item, outcome in report.misses:
        key = f"want {item.expected_intent}/{item.handoff}, got {outcome.intent}/{outcome.trigger}"
        grouped[key].append(outcome.heard)
    console.print(f"[bold]misses at {report.wer:.0%} WER[/bold]")
    for key, texts in sorted(grouped.items(), key=lambda kv: -len(kv[1])):
        console.print(f"  {key} ({len(texts)})")
        for text in texts[:4]:
            console.print(f"      {text}", highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", type=Path, default=None, help="bot pack YAML (the bundled one if unset)")
    parser.add_argument("--set", type=Path, default=PARAPHRASES, help="the paraphrase set")
    parser.add_argument("--wer", default="0,0.15,0.25", help="word error rates to run")
    parser.add_argument("--seeds", type=int, default=8, help="misrecognitions per sentence at each WER > 0")
    parser.add_argument("--misses", action="store_true", help="list the misses")
    args = parser.parse_args(argv)
    console = Console()
    started = time.perf_counter()
    pack = load_pack(args.pack)
    console.print(f"pack {pack.source} loaded and its classifier trained in {time.perf_counter() - started:.2f} s")
    items = load_paraphrases(args.set)
    reports = [evaluate(pack, items, float(w), args.seeds) for w in args.wer.split(",")]
    print_summary(console, reports)
    print_breakdown(console, reports, "intent")
    print_breakdown(console, reports, "trigger")
    if args.misses:
        for report in reports:
            print_misses(console, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
