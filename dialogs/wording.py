"""Speech-friendly wording: how numbers, lists and waits sound on a phone line, in the pack's words."""

from __future__ import annotations

import re

_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)


def digit_by_digit(value: str) -> str:
    """IDs and numbers read one digit at a time: "481523" -> "4 8 1 5 2 3"."""
    return " ".join(value) if value.isdigit() else value


def spoken_list(items: list[str], and_: str = "and") -> str:
    """ "a", "a and b", "a, b, and c" (with the pack's word for "and")."""
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} {and_} {items[1]}"
    return ", ".join(items[:-1]) + f", {and_} {items[-1]}"


def no_urls(text: str) -> str:
    """A URL cannot be heard; it is dropped from anything spoken."""
    return " ".join(_URL.sub("", text).split())


def last_digits(phone: str | None, count: int = 4, unknown: str = "on file") -> str:
    """The last digits of a phone number, read one at a time (`unknown` when there is none)."""
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return digit_by_digit(digits[-count:]) if digits else unknown


def minutes(seconds: int, one: str, many: str) -> str:
    """A wait in whole minutes, at least one: `one` ("one minute") or `many` ("{n} minutes")."""
    count = max(1, round(seconds / 60))
    return one if count == 1 else many.format(n=count)
