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
    r"\b(social security|social|ssn|national (?:id|insurance)|passport|driver'?s? licen[cs]e|tax id|id number)\b"
    r"[^.?!]{0,30}$",
    re.IGNORECASE,
)
_CODE_CONTEXT = re.compile(
    r"\b(code|passcode|pin|one[- ]time|verification|otp|security number)\b[^.?!]{0,25}$", re.IGNORECASE
)
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_GROUP = re.compile(rf"\d+|{_SPOKEN_DIGIT}", re.IGNORECASE)  # one group of digits, or one spoken digit
_MASKS = re.compile(r"\[(?:card number|ID number|one-time code)\]")


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
    """The text with card numbers, ID numbers and one-time codes replaced by bracketed labels.

    Text is read left to right and each number is judged by what precedes it *after* redaction, with the
    labels themselves ignored, so redacting already-redacted text changes nothing.
    """
    out: list[str] = []
    pos = 0
    for match in _DIGIT_RUN.finditer(text):
        out.append(text[pos : match.start()])
        out.append(_redact_run(match.group(0), "".join(out)))
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


def _redact_run(run: str, before: str) -> str:
    """One run of digit groups: mask a card or SSN inside it (the rest judged on its own), or all of it."""
    inner = _sensitive_span(run)
    if inner is not None:
        start, end, mask = inner
        left, right = run[:start], run[end:]
        left_core = left.rstrip(" -")
        red_left = (_redact_run(left_core, before) if left_core else "") + left[len(left_core) :]
        right_core = right.lstrip(" -")
        gap = right[: len(right) - len(right_core)]
        red_right = _redact_run(right_core, before + red_left + mask + gap) if right_core else ""
        return red_left + mask + gap + red_right
    digits = _digits(run)
    context = _MASKS.sub(" ", before)
    if len(digits) >= 6 and _ID_CONTEXT.search(context):
        return ID_MASK
    if 4 <= len(digits) <= 8 and _CODE_CONTEXT.search(context):
        return CODE_MASK
    return run


def _sensitive_span(run: str) -> tuple[int, int, str] | None:
    """Where in the run a card number (13-19 digits passing Luhn, in whole groups) or an SSN sits."""
    groups = [(m.start(), m.end(), _digits(m.group(0))) for m in _GROUP.finditer(run)]
    for i in range(len(groups)):
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j][2]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_valid(digits):
                # prefer the longest card starting here
                best = j
                extra = digits
                for k in range(j + 1, len(groups)):
                    extra += groups[k][2]
                    if len(extra) > 19:
                        break
                    if luhn_valid(extra):
                        best = k
                return groups[i][0], groups[best][1], CARD_MASK
    ssn = _SSN.search(run)
    if ssn is not None:
        return ssn.start(), ssn.end(), ID_MASK
    return None
