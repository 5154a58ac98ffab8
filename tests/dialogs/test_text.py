"""Finding pack phrases in callers' words: a list of phrases normalised once, looked up through the set of
phrases a text holds, finds what matching phrase by phrase finds, in the list's order."""

from __future__ import annotations

import pytest

from dialogs.text import PhraseFinder, Phrases, matched, normalise

PHRASES = [
    "real person",
    "Agent",
    "talk to a",
    "person",
    "I'm locked out",
    "locked-out",
    "agent",  # the same phrase twice, once per spelling: both are found, as `matched` finds them
    "?!",  # nothing left once normalised: found only in a text with nothing in it
    "a",
    "don’t",
]
TEXTS = [
    "",
    "talk to a real person",
    "i want a real person",
    "my personal details",
    "the agents",
    "agent",
    "i'm locked out of the app",
    "locked out",
    "a",
    "real",
    "don't do that agent",
    "person person",
]


@pytest.mark.parametrize("text", TEXTS)
def test_phrases_found_through_the_finder_are_those_matched_phrase_by_phrase(text: str) -> None:
    phrases = Phrases(PHRASES)
    present = PhraseFinder(phrases.normalised).present(normalise(text))
    assert phrases.found(present) == matched(normalise(text), PHRASES)


@pytest.mark.parametrize("text", TEXTS)
def test_the_first_phrase_found_is_the_first_one_matched(text: str) -> None:
    phrases = Phrases(PHRASES)
    present = PhraseFinder(phrases.normalised).present(normalise(text))
    assert phrases.first(present) == next(iter(matched(normalise(text), PHRASES)), None)


def test_the_finder_knows_only_its_own_phrases() -> None:
    finder = PhraseFinder([normalise("real person")])
    assert finder.present("talk to a real person") == {"real person"}
    assert finder.present("talk to someone") == set()
    assert Phrases(["agent"]).found(finder.present("real person agent")) == []  # "agent" was never given to it
