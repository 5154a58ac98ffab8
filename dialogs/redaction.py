"""Removes card numbers, national ID numbers and one-time codes from text before it is stored or shown.

Callers read these aloud, so the recogniser writes them as digits ("4111 1111 1111 1111") or as words
("four one one one ..."); both forms are found. A digit run is a card number when it has 13 to 19 digits
and passes the Luhn check, an ID number when it has the shape of a US social security number or follows
words such as "social security" or "passport", and a one-time code when 4 to 8 digits follow words such as
"code", "passcode" or "PIN". Order numbers and phone numbers are left alone: agents need them.
"""

from __future__ import annotations

import re

CARD_MASK = "[card number]"
ID_MASK = "[ID number]"
CODE_MASK = "[one-time code]"

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_SPOKEN_DIGIT = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# A run of digits, possibly grouped by spaces or dashes, or a run of spoken digits.
_DIGIT_RUN = re.compile(
    rf"(?<![\w-])(?:\d[\d -]*\d|\d|{_SPOKEN_DIGIT}(?:[ -]+{_SPOKEN_DIGIT})*)(?![\w-])",
    re.IGNORECASE,
)
_ID_CONTEXT = re.compile(
    r"(social security|social|ssn|national (?:id|insurance)|passport|driver'?s? licen[cs]e|tax id|id number)"
    r"[^.?!]{0,30}$",
    re.IGNORECASE,
)
_CODE_CONTEXT = re.compile(
    r"(code|passcode|pin|one[- ]time|verification|otp|security number)[^.?!]{0,25}$", re.IGNORECASE
)
_SSN_SHAPE = re.compile(r"^\d{3}-\d{2}-\d{4}$")


def _digits(run: str) -> str:
    if any(ch.isdigit() for ch in run):
        return "".join(ch for ch in run if ch.isdigit())
    return "".join(_DIGIT_WORDS[word.lower()] for word in re.split(r"[ -]+", run.strip()))


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number carries in its last digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str) -> str:
    """The text with card numbers, ID numbers and one-time codes replaced by bracketed labels."""

    def replace(match: re.Match[str]) -> str:
        run = match.group(0)
        digits = _digits(run)
        before = text[: match.start()]
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return CARD_MASK
        if _SSN_SHAPE.match(run.strip()) or (len(digits) >= 6 and _ID_CONTEXT.search(before)):
            return ID_MASK
        if 4 <= len(digits) <= 8 and _CODE_CONTEXT.search(before):
            return CODE_MASK
        return run

    return _DIGIT_RUN.sub(replace, text)
