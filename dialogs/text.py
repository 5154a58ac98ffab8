"""Callers' words as the dialog compares them: normalised, and phrases found on word boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterable, Set
from functools import lru_cache

_NOT_WORD = re.compile(r"[^\w' ]+|_")


def normalise(text: str) -> str:
    """Lower case, apostrophes kept inside words, other punctuation gone, single spaces (any script)."""
    text = _NOT_WORD.sub(" ", text.lower().replace("’", "'"))
    words = [word.strip("'") for word in text.split()]
    return " ".join([word for word in words if word])


def has_phrase(normalised: str, phrase: str) -> bool:
    """True when `phrase` occurs in the normalised text on word boundaries."""
    return _padded(phrase) in f" {normalised} "


@lru_cache(maxsize=8192)
def _padded(phrase: str) -> str:
    """A pack phrase, normalised once (packs hold a few thousand), with the spaces that make a word boundary."""
    return f" {normalise(phrase)} "


def matched(normalised: str, phrases: list[str]) -> list[str]:
    """The phrases of a marker list that occur in the text."""
    padded = f" {normalised} "
    return [p for p in phrases if _padded(p) in padded]


class Phrases:
    """A list of pack phrases, each normalised once, found in a text through the set of phrases it holds."""

    __slots__ = ("_distinct", "normalised", "said")

    def __init__(self, phrases: Iterable[str]) -> None:
        self.said: tuple[str, ...] = tuple(phrases)
        self.normalised: tuple[str, ...] = tuple(normalise(phrase) for phrase in self.said)
        self._distinct = frozenset(self.normalised)

    def found(self, present: Set[str]) -> list[str]:
        """The phrases, as the pack says them and in its order, whose normalised form is `present` (`matched`)."""
        if self._distinct.isdisjoint(present):
            return []
        return [said for said, norm in zip(self.said, self.normalised, strict=True) if norm in present]

    def first(self, present: Set[str]) -> str | None:
        """The first phrase, as the pack says it, whose normalised form is `present`."""
        if self._distinct.isdisjoint(present):
            return None
        return next(said for said, norm in zip(self.said, self.normalised, strict=True) if norm in present)


class PhraseFinder:
    """Which of many normalised phrases a normalised text holds on word boundaries, looked up by first word."""

    def __init__(self, normalised: Iterable[str]) -> None:
        by_first: dict[str, list[tuple[str, str]]] = {}
        for phrase in dict.fromkeys(normalised):
            if phrase:
                by_first.setdefault(phrase.split(" ", 1)[0], []).append((phrase, f" {phrase} "))
        self._by_first = {word: tuple(phrases) for word, phrases in by_first.items()}

    def present(self, normalised: str) -> frozenset[str]:
        """The phrases in the text, as `has_phrase` finds them: the empty phrase only in an empty text."""
        if not normalised:
            return frozenset({""})
        padded = f" {normalised} "
        return frozenset(
            phrase
            for word in set(normalised.split())
            for phrase, padded_phrase in self._by_first.get(word, ())
            if padded_phrase in padded
        )
