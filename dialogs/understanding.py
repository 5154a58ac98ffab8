"""What a caller's words mean to the dialog: the intent, the markers, and facts such as an order number.

Deliberately simple and explainable: keywords and example phrases from the bot pack, compared on
normalised words. Every score it gives can be read off the pack, and the dialog logs it with each decision.
The language (function words, digit words, fact phrases) is the pack's too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dialogs.pack import BotPack, Intent, Words

_NOT_WORD = re.compile(r"[^\w' ]+|_")


def normalise(text: str) -> str:
    """Lower case, apostrophes kept inside words, other punctuation gone, single spaces (any script)."""
    text = _NOT_WORD.sub(" ", text.lower().replace("’", "'"))
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


def has_phrase(normalised: str, phrase: str) -> bool:
    """True when `phrase` occurs in the normalised text on word boundaries."""
    return f" {normalise(phrase)} " in f" {normalised} "


def matched(normalised: str, phrases: list[str]) -> list[str]:
    """The phrases of a marker list that occur in the text."""
    return [p for p in phrases if has_phrase(normalised, p)]


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


def score_intent(intent: Intent, normalised: str, stop: frozenset[str]) -> IntentScore:
    """Keywords count most (a multi-word keyword is near-certain); otherwise the closest example's overlap."""
    best = IntentScore(intent.name, 0.0, "")
    for keyword in intent.keywords:
        if has_phrase(normalised, keyword):
            score = 0.9 if " " in keyword.strip() else 0.6
            if score > best.score:
                best = IntentScore(intent.name, score, f"keyword {keyword!r}")
    said = _content(normalised, stop)
    if not said:
        return best
    for example in intent.examples:
        wanted = _content(normalise(example), stop)
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
    stop = frozenset(pack.words.stop)
    scores = sorted(
        (s for s in (score_intent(i, norm, stop) for i in pack.intents) if s.score > 0),
        key=lambda s: (-s.score, s.intent),
    )
    m = pack.markers
    without_exclusions = norm
    for phrase in m.person_request_exclude:  # "in person", "someone hacked": not a request for a person
        without_exclusions = f" {without_exclusions} ".replace(f" {normalise(phrase)} ", " ").strip()
    markers = {
        name: matched(norm, phrases)
        for name, phrases in {
            "urgency": m.urgency,
            "frustration": m.frustration,
            "distress": m.distress,
            "did_not_work": m.did_not_work,
            "affirm": m.affirm,
            "deny": m.deny,
            "goodbye": m.goodbye,
            "choose_first": m.choose_first,
            "choose_second": m.choose_second,
        }.items()
    }
    markers["person_request"] = matched(without_exclusions, m.person_request)
    unclear = not scores or scores[0].score < pack.policy.min_intent_score
    return Reading(
        text=text,
        normalised=norm,
        scores=tuple(scores),
        markers={k: v for k, v in markers.items() if v},
        digits=spoken_digits(norm, pack.words),
        facts=_facts(text, norm, pack.words),
        language=_language(pack, norm, stop) if unclear else None,
    )


def spoken_digits(normalised: str, words: Words) -> str:
    """Every digit said, in order, whether as numerals ("4 8 1") or words ("four eight one")."""
    out: list[str] = []
    after_another = set(words.digits_after_another)
    for word in normalised.split():
        if word.isdigit() and word.isascii():
            out.append(word)
        elif word in words.digits and (word not in after_another or out):
            out.append(words.digits[word])
    return "".join(out)


def _content(words: str, stop: frozenset[str]) -> set[str]:
    return {w for w in words.split() if w not in stop}


def _facts(text: str, norm: str, words: Words) -> dict[str, str]:
    facts: dict[str, str] = {}
    quote = _error_quote(words).search(text.lower()) if words.error_verbs else None
    if quote:
        facts["error_message"] = quote.group(1).strip()
    for kind, phrases in words.facts.items():
        value = next((value for phrase, value in phrases.items() if has_phrase(norm, phrase)), None)
        if value is not None:
            facts[kind] = value
    return facts


_ERROR_PATTERNS: dict[tuple[str, ...], re.Pattern[str]] = {}


def _error_quote(words: Words) -> re.Pattern[str]:
    """What follows "it says ..." or "the error is ...": the message the caller sees."""
    verbs = tuple(words.error_verbs)
    pattern = _ERROR_PATTERNS.get(verbs)
    if pattern is None:
        alternatives = "|".join(re.escape(v) for v in sorted(verbs, key=len, reverse=True))
        pattern = re.compile(rf"\b(?:{alternatives})\s+(?:that\s+)?[\"']?([^.?!\"']{{3,60}})")
        _ERROR_PATTERNS[verbs] = pattern
    return pattern


def _language(pack: BotPack, norm: str, stop: frozenset[str]) -> str | None:
    """Another language, when at least two of its marker words appear and no content of the pack's does."""
    if len([w for w in norm.split() if w in stop]) >= 3:  # plenty of the pack's language around a "hola"
        return None
    for language, words in pack.markers.other_language.items():
        hits = matched(norm, words)
        if len(hits) >= 2 or (hits and len(norm.split()) <= 2):
            return language
    return None
