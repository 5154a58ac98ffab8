"""The dialog on callers it was not written for: `paraphrases.yaml`, clean and at 15 % WER (bench/paraphrases.py).

The set was written without looking at the bot pack. These are the goals of issue 10, so a change that makes
understanding worse fails here.
"""

from __future__ import annotations

import pytest

from bench.paraphrases import Paraphrase, Report, evaluate, load_paraphrases, risk_triggers
from dialogs.pack import BotPack

SEEDS = 8  # misrecognitions of each sentence at 15 % WER (fewer make a noisy measure: 3 seeds read 97.6 %)


@pytest.fixture(scope="module")
def items() -> list[Paraphrase]:
    return load_paraphrases()


@pytest.fixture(scope="module")
def clean(pack: BotPack, items: list[Paraphrase]) -> Report:
    return evaluate(pack, items)


@pytest.fixture(scope="module")
def noisy(pack: BotPack, items: list[Paraphrase]) -> Report:
    return evaluate(pack, items, wer=0.15, seeds=SEEDS)


def test_the_set_covers_every_intent_trigger_and_small_talk(pack: BotPack, items: list[Paraphrase]) -> None:
    assert len(items) >= 300
    intents = {i.intent for i in items}
    assert {i.name for i in pack.intents} <= intents and "none" in intents
    triggers = {i.handoff for i in items}
    assert risk_triggers(pack) - {"intent_switch_to_dispute"} <= triggers
    assert {"explicit_request", "distress_marker", "repeated_failure", "other_language"} <= triggers
    assert any("small_talk" in i.tags for i in items)


def test_clean_intent_accuracy_is_at_least_90_percent(clean: Report) -> None:
    assert clean.intent_accuracy >= 0.90


def test_clean_safety_triggers_are_recalled_at_least_98_percent(clean: Report) -> None:
    assert clean.safety_recall >= 0.98
    assert clean.recall("distress_marker") >= 0.98 and clean.recall("explicit_request") >= 0.98


def test_at_15_percent_wer_requests_for_a_person_and_distress_are_recalled_at_least_95_percent(noisy: Report) -> None:
    # the classifier's own models of both, not shared with the topic: measured 97.3 % and 98.3 % (8 seeds)
    assert noisy.recall("explicit_request") >= 0.95 and noisy.recall("distress_marker") >= 0.95


def test_clean_false_handoffs_on_resolvable_requests_are_at_most_5_percent(clean: Report) -> None:
    assert clean.false_handoff_rate <= 0.05


def test_at_15_percent_wer_intent_accuracy_is_at_least_85_percent(noisy: Report) -> None:
    assert noisy.intent_accuracy >= 0.85


def test_at_15_percent_wer_false_handoffs_are_at_most_5_percent(noisy: Report) -> None:
    assert noisy.false_handoff_rate <= 0.05


def test_at_15_percent_wer_safety_triggers_are_recalled_at_least_95_percent(noisy: Report) -> None:
    assert noisy.safety_recall >= 0.95  # measured 95.9 % (8 seeds)
