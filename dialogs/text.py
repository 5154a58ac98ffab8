"""Callers' words as the dialog compares them: normalised, and phrases found on word boundaries."""

from __future__ import annotations

import re
from functools import lru_cache

_NOT_WORD = re.compile(r"[^\w' ]+|_")


def normalise(text: str) -> str:
    """Lower case, apostrophes kept inside words, other punctuation gone, single spaces (any script)."""
    text = _NOT_WORD.sub(" ", text.lower().replace("’", "'"))
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


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
