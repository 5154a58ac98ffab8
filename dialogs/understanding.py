"""What a caller's words mean to the dialog: the intent, the markers, and facts such as an order number.

Deliberately simple and explainable: keywords and example phrases from the bot pack, compared on
normalised words. Every score it gives can be read off the pack, and the dialog logs it with each decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dialogs.pack import BotPack, Intent

_STOP = frozenset(
    """a an the i i'm im me my to of and or is it its this that for on in at with be can could would you your
    we our us do does did have has had am are was were will just please want need like so""".split()  # noqa: SIM905
)
_DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}  # fmt: skip
_ERROR_QUOTE = re.compile(
    r"\b(?:says|said|saying|shows|error(?: message)?(?: is)?)\s+(?:that\s+)?[\"']?([^.?!\"']{3,60})"
)
_DEVICES = ("iphone", "android", "ipad", "laptop", "computer", "mac", "the app", "website", "browser", "tablet")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def normalise(text: str) -> str:
    """Lower case, apostrophes kept inside words, other punctuation gone, single spaces."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(word.strip("'") for word in text.split())


def has_phrase(normalised: str, phrase: str) -> bool:
    """True when `phrase` occurs in the normalised text on word boundaries."""
    return f" {normalise(phrase)} " in f" {normalised} "


def matched(normalised: str, phrases: list[str]) -> list[str]:
    """The phrases of a marker list that occur in the text."""
    return [p for p in phrases if has_phrase(normalised, p)]


def _content(words: str) -> set[str]:
    return {w for w in words.split() if w not in _STOP}


@dataclass(frozen=True)
class IntentScore:
    """How well an intent fits what was said, and why (the keyword or example that matched)."""

    intent: str
    score: float
    because: str


@dataclass(frozen=True)
class Reading:
    """One caller utterance, understood: scored intents (best first), markers found, facts pulled out."""

    text: str
    normalised: str
    scores: tuple[IntentScore, ...]
    markers: dict[str, list[str]] = field(default_factory=dict)
    digits: str = ""
    facts: dict[str, str] = field(default_factory=dict)
    language: str | None = None

    @property
    def best(self) -> IntentScore | None:
        return self.scores[0] if self.scores else None

    def has(self, marker: str) -> bool:
        return bool(self.markers.get(marker))


def score_intent(intent: Intent, normalised: str) -> IntentScore:
    """Keywords count most (a multi-word keyword is near-certain); otherwise the closest example's overlap."""
    best = IntentScore(intent.name, 0.0, "")
    for keyword in intent.keywords:
        if has_phrase(normalised, keyword):
            score = 0.9 if " " in keyword.strip() else 0.6
            if score > best.score:
                best = IntentScore(intent.name, score, f"keyword {keyword!r}")
    said = _content(normalised)
    if not said:
        return best
    for example in intent.examples:
        wanted = _content(normalise(example))
        if not wanted:
            continue
        shared = len(said & wanted)
        # one shared word is weak evidence ("my account" is not "cancel my account"), so it counts half
        overlap = shared / len(wanted) * min(1.0, shared / 2)
        if overlap > best.score:
            best = IntentScore(intent.name, round(overlap, 3), f"example {example!r}")
    return best


def read(pack: BotPack, text: str) -> Reading:
    """Understand one utterance against the pack."""
    norm = normalise(text)
    scores = sorted(
        (s for s in (score_intent(i, norm) for i in pack.intents) if s.score > 0),
        key=lambda s: (-s.score, s.intent),
    )
    m = pack.markers
    without_exclusions = norm
    for phrase in m.person_request_exclude:  # "in person", "someone hacked": not a request for a person
        without_exclusions = f" {without_exclusions} ".replace(f" {normalise(phrase)} ", " ").strip()
    markers = {
        name: matched(norm, phrases)
        for name, phrases in {
            "person_request": m.person_request,  # matched on the text without exclusions, below
            "urgency": m.urgency,
            "frustration": m.frustration,
            "distress": m.distress,
            "did_not_work": m.did_not_work,
            "affirm": m.affirm,
            "deny": m.deny,
            "goodbye": m.goodbye,
        }.items()
    }
    markers["person_request"] = matched(without_exclusions, m.person_request)
    return Reading(
        text=text,
        normalised=norm,
        scores=tuple(scores),
        markers={k: v for k, v in markers.items() if v},
        digits=spoken_digits(norm),
        facts=_facts(text, norm),
        language=_language(pack, norm) if not scores or scores[0].score < pack.policy.min_intent_score else None,
    )


def spoken_digits(normalised: str) -> str:
    """Every digit said, in order, whether as numerals ("4 8 1") or words ("four eight one")."""
    out = []
    for word in normalised.split():
        if word.isdigit():
            out.append(word)
        elif (word in _DIGIT_WORDS and word not in ("o", "oh")) or (word in ("oh", "o") and out):
            out.append(_DIGIT_WORDS[word])
    return "".join(out)


def _facts(text: str, norm: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    quote = _ERROR_QUOTE.search(text.lower())
    if quote:
        facts["error_message"] = quote.group(1).strip()
    device = next((d for d in _DEVICES if has_phrase(norm, d)), None)
    if device:
        facts["device"] = device.removeprefix("the ")
    day = next((d for d in _WEEKDAYS if has_phrase(norm, d)), None)
    if day:
        facts["day_mentioned"] = day.capitalize()
    return facts


def _language(pack: BotPack, norm: str) -> str | None:
    """Another language, when at least two of its marker words appear and no English content does."""
    if len([w for w in norm.split() if w in _STOP]) >= 3:  # plenty of English around a "hola"
        return None
    for language, words in pack.markers.other_language.items():
        hits = matched(norm, words)
        if len(hits) >= 2 or (hits and len(norm.split()) <= 2):
            return language
    return None
