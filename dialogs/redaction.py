"""Removes card numbers, national ID numbers, one-time codes and email addresses from text before it is stored
or shown.

Callers read these aloud, so the recogniser writes them as digits, grouped by spaces, dashes, dots or commas
("4111.1111.1111.1111"), or as words: digit by digit ("four one one one"), in pairs ("forty one, eleven"),
or with "double" ("double one"); every form is found. A digit run is a card number when it has 13 to 19
digits and passes the Luhn check, an ID number when it has the shape of a US social security number or
follows words such as "social security" or "passport", and a one-time code when 4 to 8 digits follow words
such as "code", "passcode" or "PIN" in the same sentence (unless another number's name, such as "order",
comes between). Email addresses, written or spoken ("jane dot doe at gmail dot com"), are masked: the agent
can ask for one. Order numbers and phone numbers are left alone: agents need them, and a callback needs the
phone number.
"""

from __future__ import annotations

import re

CARD_MASK = "[card number]"
ID_MASK = "[ID number]"
CODE_MASK = "[one-time code]"
EMAIL_MASK = "[email]"

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15",
    "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
_TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fourty": "4", "fifty": "5", "sixty": "6", "seventy": "7",
    "eighty": "8", "ninety": "9",
}  # fmt: skip
_REPEATS = {"double": 2, "triple": 3}
_UNIT = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_NUMBER_WORD = (
    rf"(?:(?:twenty|thirty|fou?rty|fifty|sixty|seventy|eighty|ninety)(?:[ -]{_UNIT})?"
    rf"|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
    rf"|(?:double|triple) {_UNIT}|{_UNIT})"
)
_SEPARATOR = r"(?:[ .,-]+|, )"
# A run of digits, grouped by spaces, dashes, dots or commas; or a run of spoken numbers.
_DIGIT_RUN = re.compile(
    rf"(?<![\w.-])(?:\d(?:[\d -]|[.,](?=\d))*\d|\d|{_NUMBER_WORD}(?:[ ,-]+{_NUMBER_WORD})*)(?![\w-])",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_SPOKEN_EMAIL = re.compile(
    r"\b\w+(?:(?: dot | underscore | dash )\w+)* at \w+(?: dot \w+)*(?: dot (?:com|net|org|edu|gov|co|us|uk|io))\b",
    re.IGNORECASE,
)
_ID_CONTEXT = re.compile(
    r"\b(social security|social|ssn|national (?:id|insurance)|passport|driver'?s? licen[cs]e|tax id|id number)\b"
    r"[^.?!]{0,30}$",
    re.IGNORECASE,
)
_CODE_CONTEXT = re.compile(
    r"\b(code|passcode|pin|one[- ]time|verification|otp|security number)\b(?P<gap>[^.?!]{0,80})$", re.IGNORECASE
)
_OTHER_NUMBER = re.compile(
    r"\b(order|account number|phone number|zip|postcode|invoice|confirmation number|reference|tracking)\b",
    re.IGNORECASE,
)
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_GROUP = re.compile(rf"\d+|{_NUMBER_WORD}", re.IGNORECASE)  # one group of digits, or one spoken number
_MASKS = re.compile(r"\[(?:card number|ID number|one-time code|email)\]")


def _digits(run: str) -> str:
    """The digits a run stands for: "4111-1111" -> "41111111"; "forty one, double one" -> "4111"."""
    if any(ch.isdigit() for ch in run):
        return "".join(ch for ch in run if ch.isdigit())
    out: list[str] = []
    repeat = 1
    for word in (w for w in re.split(r"[ ,-]+", run.strip().lower()) if w):
        if word in _REPEATS:
            repeat = _REPEATS[word]
        elif word in _DIGIT_WORDS:
            if out and out[-1].endswith("_"):  # "forty one": the unit of a tens word
                out[-1] = out[-1][:-1] + _DIGIT_WORDS[word] * repeat
            else:
                out.append(_DIGIT_WORDS[word] * repeat)
            repeat = 1
        elif word in _TEENS:
            out.append(_TEENS[word])
        elif word in _TENS:
            out.append(_TENS[word] + "_")  # "forty" alone is 40; a unit may follow
    return "".join(part[:-1] + "0" if part.endswith("_") else part for part in out)


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
    text = _SPOKEN_EMAIL.sub(EMAIL_MASK, _EMAIL.sub(EMAIL_MASK, text))
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
    code = _CODE_CONTEXT.search(context) if 4 <= len(digits) <= 8 else None
    if code is not None and not _OTHER_NUMBER.search(code.group("gap")):
        return CODE_MASK
    return run


def _sensitive_span(run: str) -> tuple[int, int, str] | None:
    """Where in the run a card number (13-19 digits passing Luhn, in whole groups) or an SSN sits."""
    groups = [(m.start(), m.end(), _digits(m.group(0))) for m in _GROUP.finditer(run)]
    # A card starts and ends on whole tokens: "000-01-0000" is one token, never cut after its dashes
    starts = [g[0] == 0 or run[g[0] - 1] in " ," for g in groups]
    ends = [g[1] == len(run) or run[g[1]] in " ," for g in groups]
    for i in range(len(groups)):
        if not starts[i]:
            continue
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j][2]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and ends[j] and luhn_valid(digits):
                # prefer the longest card starting here
                best = j
                extra = digits
                for k in range(j + 1, len(groups)):
                    extra += groups[k][2]
                    if len(extra) > 19:
                        break
                    if ends[k] and luhn_valid(extra):
                        best = k
                return groups[i][0], groups[best][1], CARD_MASK
    ssn = _SSN.search(run)
    if ssn is not None:
        return ssn.start(), ssn.end(), ID_MASK
    return None
