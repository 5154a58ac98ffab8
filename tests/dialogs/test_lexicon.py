"""A pack's lexicon (its phrases normalised once) finds in every paraphrase the marker phrases, multi-word
keywords, fact phrases and other languages' words that matching each list phrase by phrase finds."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from bench.paraphrases import load_paraphrases
from dialogs.pack import BotPack, load_pack
from dialogs.text import has_phrase, matched, normalise

PACKS = Path(__file__).parent.parent / "packs"


@pytest.fixture(scope="module", params=["larkspur", "northwind", "hanbit_ko"])
def each_pack(request: pytest.FixtureRequest) -> BotPack:
    return load_pack(None if request.param == "larkspur" else PACKS / f"{request.param}.yaml")


def _texts(pack: BotPack) -> list[str]:
    """Paraphrases, and the pack's own phrases and examples, as callers might say them."""
    m = pack.markers
    said = [p.text for p in load_paraphrases()[::5]]
    said += [*m.person_request, *m.urgency, *m.distress, *m.goodbye, *m.affirm, *m.deny, *m.person_request_exclude]
    said += [k for intent in pack.intents for k in intent.keywords] + [e for i in pack.intents for e in i.examples]
    said += [w for words in m.other_language.values() for w in words]
    said += [phrase for phrases in pack.words.facts.values() for phrase in phrases]
    return ["", *(normalise(s) for s in said), *(normalise(f"well {s} and {t}") for s, t in pairwise(said))]


def test_the_lexicon_finds_what_matching_phrase_by_phrase_finds(each_pack: BotPack) -> None:
    lexicon = each_pack.lexicon()
    m = each_pack.markers
    for text in _texts(each_pack):
        present = lexicon.finder.present(text)
        for name, phrases in lexicon.markers:
            assert phrases.found(present) == matched(text, getattr(m, name)), (text, name)
        assert lexicon.person_request.found(present) == matched(text, m.person_request), text
        assert lexicon.person_request_weak.found(present) == matched(text, m.person_request_weak), text
        assert lexicon.distress.found(present) == matched(text, m.distress), text
        assert lexicon.distress_terms.found(present) == matched(text, m.distress_terms), text
        for keywords, intent in zip(lexicon.keywords, each_pack.intents, strict=True):
            first = next((k for k in intent.keywords if " " in k.strip() and has_phrase(text, k)), None)
            assert keywords.phrases.first(present) == first, (text, intent.name)
        for fact, (kind, values) in zip(lexicon.facts, each_pack.words.facts.items(), strict=True):
            assert fact.kind == kind and fact.values == values
            assert fact.phrases.first(present) == next((p for p in values if has_phrase(text, p)), None), text
        for (language, words), (other, listed) in zip(lexicon.other_language, m.other_language.items(), strict=True):
            assert language == other and words.found(present) == matched(text, listed), text


def test_a_pack_builds_its_lexicon_once(pack: BotPack) -> None:
    assert pack.lexicon() is pack.lexicon()
