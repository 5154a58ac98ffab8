"""The pack's intent classifier: its fast scorer gives scikit-learn's own probabilities, training is
deterministic, and every guess explains itself with the caller's words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.paraphrases import load_paraphrases
from dialogs.classifier import DISTRESS, NOTHING, PERSON, IntentClassifier, Synonyms, _as_misheard
from dialogs.pack import BotPack
from dialogs.text import normalise

ODD = ["", "zzzz qqqq", "the the the", "four eight one five two three", "hola necesito ayuda", "a"]


def test_the_fast_scorer_gives_the_librarys_probabilities(pack: BotPack) -> None:
    classifier = pack.classifier()
    texts = [normalise(p.text) for p in load_paraphrases()[::7]] + ODD
    for text in texts:
        if not classifier.prepared(text):
            continue
        assert np.allclose(classifier.fast_probabilities(text), classifier.library_probabilities(text), atol=1e-9), text


def test_training_the_same_pack_twice_gives_the_same_classifier(pack: BotPack) -> None:
    again = IntentClassifier.train(pack)
    for text in ("where is my order", "someone used my card", "my chest hurts"):
        assert np.array_equal(again.fast_probabilities(text), pack.classifier().fast_probabilities(text))


def test_it_knows_every_intent_and_its_own_three_labels(pack: BotPack) -> None:
    assert set(pack.classifier().labels) == {i.name for i in pack.intents} | {PERSON, DISTRESS, NOTHING}


def test_guesses_are_best_first_with_probabilities_that_add_up(pack: BotPack) -> None:
    guesses = pack.classifier().guesses("i was charged twice for one order", top=len(pack.intents) + 3)
    probabilities = [g.probability for g in guesses]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=0.01)
    assert guesses[0].label == "billing_dispute" and "charged" in " ".join(guesses[0].words)


def test_nothing_to_read_gives_no_guesses(pack: BotPack) -> None:
    assert pack.classifier().guesses("") == ()


def test_synonyms_replace_whole_words_and_phrases_longest_first() -> None:
    synonyms = Synonyms({"log on": "log in", "reimbursement": "refund", "on": "upon"})
    assert synonyms.apply("i cannot log on to get my reimbursement") == "i cannot log in to get my refund"
    assert synonyms.apply("onion") == "onion"  # never inside a word


def test_misheard_copies_lose_or_swap_some_words_keep_their_label_and_are_the_same_every_time() -> None:
    texts = ["my order arrived broken and leaking", "agent", "where is my order", "two words"]
    labels = ["damaged_item", "_person", "order_status", "order_status"]
    copies, copy_labels = _as_misheard(texts, labels, ["uh", "the"])
    assert (copies, copy_labels) == _as_misheard(texts, labels, ["uh", "the"])  # seeded: a pack trains the same
    assert copies and len(copies) == len(copy_labels)
    originals = dict(zip(texts, labels, strict=True))
    for copy, label in zip(copies, copy_labels, strict=True):
        source = next(t for t in texts if set(copy.split()) - {"uh", "the"} <= set(t.split()))
        assert originals[source] == label and copy != source
        assert len(source.split()) >= 3  # "agent" and "two words" are learnt only as written
    lost_only, _ = _as_misheard(texts, labels, [])
    assert all(set(c.split()) <= set(" ".join(texts).split()) for c in lost_only)  # no small words: only losses


def test_the_classifier_learns_the_misheard_copies_too(pack: BotPack) -> None:
    """A damaged item said with its key word lost still leans to the damaged item, not to the order's status."""
    guesses = pack.classifier().guesses(normalise("the package showed up and everything inside is ruined"))
    assert guesses[0].label == "damaged_item"


def test_character_features_looked_up_word_by_word_are_those_of_the_whole_sentence(pack: BotPack) -> None:
    """A block of character n-grams reads each word's columns from a table built with the classifier: the same
    columns, in the same order, with the same weights as the n-grams of the whole sentence."""
    blocks = pack.classifier()._scorer.blocks
    texts = [normalise(p.text) for p in load_paraphrases()[::7]] + ODD + ["qwxz order zzyzx", "naïve café’s"]
    assert any(block.by_word and block.word_columns for block in blocks)
    for block in blocks:
        for text in texts:
            counts: dict[int, int] = {}
            for column in block.known(text):
                counts[column] = counts.get(column, 0) + 1
            weights = [(1.0 + math.log(n)) * block.idf[c] for c, n in counts.items()]
            norm = math.sqrt(sum(w * w for w in weights))
            assert block.features(text) == (list(counts), [w / norm for w in weights]), text
