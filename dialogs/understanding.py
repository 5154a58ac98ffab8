"""What a caller's words mean to the dialog: the intent, the markers, and facts such as an order number.

Two kinds of evidence, both from the bot pack and both explainable. The pack's classifier
(`dialogs.classifier`, trained on the pack's examples) scores every intent and hears requests for a person
and callers in distress in words no list has; the words that decided it go into the dialog's `Explain`.
Marker phrases and multi-word keywords are matched exactly on normalised words, and stand on their own: a
caller who says "chest pain" or "real person" is never left to a model's judgement. The language (function
words, digit words, fact phrases) is the pack's too.
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, field

from dialogs.classifier import DISTRESS, PERSON, Guess
from dialogs.lexicon import Lexicon
from dialogs.pack import BotPack, Words
from dialogs.text import has_phrase, matched, normalise

__all__ = ["IntentScore", "Reading", "has_phrase", "matched", "normalise", "read", "spoken_digits"]

KEYWORD_SCORE = 0.9  # a multi-word keyword said as such: near-certain, whatever the classifier thinks
TOPIC_SHARE = 0.6  # of the classifier's belief in intents, the share one needs to be the topic of a person request
TOPIC_FLOOR = 0.1  # and its own probability at least this
MIN_NUMBER = 3  # digits that make an utterance a number someone is reading out
DESCRIBED = 4  # content words that make a description: below it, the classifier's distress needs more certainty
SHORT_SENTENCE_SCORE = 0.35  # how sure, then: "purple monkey dishwasher" must not read as distress
SHORT_REQUEST_SCORE = 0.25  # and a request for a person ("in please", "can no can the line for me")
TOPIC_OF_REST = 0.5  # what is left of a request for a person names its topic only this surely
DISTRESS_LEAD = 0.25  # distress as the best reading of all, this sure, of a described sentence: err towards help
TOPIC_WORDS = 2  # content words a request for a person needs besides the asking, to be about something


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
    guesses: tuple[Guess, ...] = ()  # the classifier's, best first: for the Explain action
    topic: str | None = None  # the intent this is about, even when it mostly asks for a person

    @property
    def best(self) -> IntentScore | None:
        return self.scores[0] if self.scores else None

    def has(self, marker: str) -> bool:
        return bool(self.markers.get(marker))


def read(pack: BotPack, text: str) -> Reading:
    """Understand one utterance against the pack."""
    norm = normalise(text)
    lexicon = pack.lexicon()
    present = lexicon.finder.present(norm)  # every pack phrase the caller said
    digits = spoken_digits(norm, pack.words)
    classifier = pack.classifier()
    guesses = classifier.guesses(norm, top=len(pack.intents) + 3) if norm else ()
    # a number said digit by digit is an answer, not a request: the classifier's own hearing does not count
    number = len(digits) >= max(MIN_NUMBER, len(norm.split()) // 2) or _only_digits(norm, pack.words)
    heard = () if number else guesses
    scores = _intent_scores(lexicon, present, guesses)
    without_exclusions = norm
    for padded in lexicon.person_request_exclude:  # "in person", "someone hacked": not a request for a person
        without_exclusions = f" {without_exclusions} ".replace(padded, " ").strip()
    markers = {name: phrases.found(present) for name, phrases in lexicon.markers}
    asked = heard
    if without_exclusions != norm and heard:  # "add my wife as someone who can": the model hears it without them
        asked = classifier.guesses(without_exclusions, top=len(pack.intents) + 3) if without_exclusions else ()
    unexcluded = present if without_exclusions == norm else lexicon.finder.present(without_exclusions)
    markers["person_request"] = _person_request(pack, lexicon, without_exclusions, unexcluded, asked)
    markers["distress"] = lexicon.distress.found(present) or lexicon.distress_terms.found(present)
    markers["distress_heard"] = _heard_as(
        heard, DISTRESS, _model_threshold(lexicon, norm, pack.policy.distress_score)
    ) or _leads(lexicon, heard, DISTRESS, norm)
    markers["tried"] = markers["tried"] or _attempted(norm, lexicon.attempt_verbs, lexicon.first_person)
    return Reading(
        text=text,
        normalised=norm,
        scores=tuple(scores),
        markers={k: v for k, v in markers.items() if v},
        digits=digits,
        facts=_facts(text, lexicon, present, pack.words),
        language=_language(lexicon, present, norm),
        guesses=guesses,
        topic=_topic(pack, scores, guesses, norm, markers["person_request"]),
    )


def _topic(
    pack: BotPack, scores: list[IntentScore], guesses: tuple[Guess, ...], norm: str, person: list[str]
) -> str | None:
    """The intent the caller means. "Can someone help me with my order" puts most of the classifier's belief
    on asking for a person: then what is left of the sentence, without the words that asked, is classified
    again, and the order is the topic if that is fairly sure of it."""
    if scores and scores[0].score >= pack.policy.min_intent_score:
        return scores[0].intent
    if person:
        asked = {word for phrase in person for word in normalise(phrase).split()}
        rest = [word for word in norm.split() if word not in asked]
        if len([w for w in rest if w not in pack.words.stop]) < TOPIC_WORDS:
            return None  # "I need to talk to someone": nothing left to be about
        again = [g for g in pack.classifier().guesses(" ".join(rest)) if g.is_intent]
        if again and again[0].probability >= TOPIC_OF_REST and _share_leader(again) is not None:
            return again[0].label
    return _share_leader([g for g in guesses if g.is_intent])


def _share_leader(intents: list[Guess]) -> str | None:
    """The intent with most of the classifier's belief in intents, when it has enough of it."""
    mass = sum(g.probability for g in intents)
    if not intents or mass <= 0:
        return None
    best = intents[0]
    return best.label if best.probability >= TOPIC_FLOOR and best.probability / mass >= TOPIC_SHARE else None


def _intent_scores(lexicon: Lexicon, present: Set[str], guesses: tuple[Guess, ...]) -> list[IntentScore]:
    """Each intent's score: the classifier's probability, or a multi-word keyword's near-certainty."""
    by_label = {g.label: g for g in guesses}
    scores: list[IntentScore] = []
    any_keyword = not lexicon.keyword_phrases.isdisjoint(present)
    for keywords in lexicon.keywords:
        guess = by_label.get(keywords.intent)
        keyword = keywords.phrases.first(present) if any_keyword else None
        if keyword is not None and (guess is None or guess.probability < KEYWORD_SCORE):
            scores.append(IntentScore(keywords.intent, KEYWORD_SCORE, f"keyword {keyword!r}"))
        elif guess is not None and guess.probability > 0:
            scores.append(IntentScore(keywords.intent, guess.probability, _because(guess)))
    return sorted(scores, key=lambda s: (-s.score, s.intent))


def _model_threshold(lexicon: Lexicon, norm: str, threshold: float, short: float = SHORT_SENTENCE_SCORE) -> float:
    """How likely the classifier alone must find distress or a request for a person: from two or three words
    ("purple monkey dishwasher", "I live in Boston") its guess means little, so short sentences need it surer."""
    return threshold if _described(lexicon, norm) else max(threshold, short)


def _attempted(norm: str, verbs: frozenset[str], subjects: frozenset[str]) -> list[str]:
    """ "I tried", "we've already reset", "I just checked": the caller says they did something themselves."""
    words = norm.split()
    for i, word in enumerate(words):
        if word not in subjects:
            continue
        following = words[i + 1 : i + 4]  # "i've already reset", "i have just checked"
        hit = next((w for w in following if w in verbs), None)
        if hit is not None:
            return [f"{word} {hit}"]
    return []


def _person_request(
    pack: BotPack, lexicon: Lexicon, norm: str, present: Set[str], guesses: tuple[Guess, ...]
) -> list[str]:
    """A request for a person: a marker phrase; a weak word ("someone") in a sentence the classifier hears as a
    request; or the classifier alone, sure of it. Its request-for-a-person model is asked on its own, not against
    the intents: "can I talk to someone about my bill" is about the bill and asks for a person, both at once.
    `present` holds the pack's phrases said in `norm`."""
    strong = lexicon.person_request.found(present)
    if strong:
        return strong
    policy = pack.policy
    weak = lexicon.person_request_weak.found(present)
    if weak and _heard_as(guesses, PERSON, policy.person_request_weak_score):
        return weak
    threshold = _model_threshold(lexicon, norm, policy.person_request_score, SHORT_REQUEST_SCORE)
    return _heard_as(guesses, PERSON, threshold)


def _leads(lexicon: Lexicon, guesses: tuple[Guess, ...], label: str, norm: str) -> list[str]:
    """The deciding words when `label` is the best reading of all of a described sentence, for words of it.

    Distress said with a recogniser's losses ("my baby is ... up, the thermometer says a hundred an four")
    can leave no word that pushes distress's own model up, and still no intent that fits better: then the
    nurse line, not a question. Words must have counted for it: a sentence of unknown words is not distress.
    """
    if not guesses or guesses[0].label != label or guesses[0].probability < DISTRESS_LEAD or not guesses[0].words:
        return []
    if not _described(lexicon, norm):
        return []
    return [" ".join(guesses[0].words) or label.strip("_")]


def _described(lexicon: Lexicon, norm: str) -> bool:
    """Enough content words (not the pack's stop words) to be a description, not a word or two."""
    stop = lexicon.stop
    return sum(word not in stop for word in norm.split()) >= DESCRIBED


def _because(guess: Guess) -> str:
    words = ", ".join(map(repr, guess.words)) if guess.words else "the whole sentence"
    return f"classifier {guess.probability:.2f}: {words}"


def _heard_as(guesses: tuple[Guess, ...], label: str, threshold: float) -> list[str]:
    """The classifier's deciding words when its model of `label` alone (a request for a person, distress: each
    can come with any topic) finds it at least this likely; else nothing."""
    guess = next((g for g in guesses if g.label == label), None)
    if guess is None or guess.alone < threshold:
        return []
    return [" ".join(guess.words) or label.strip("_")]


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


def _only_digits(normalised: str, words: Words) -> bool:
    """ "four eight", "7": nothing but digits, however few (a number being read out, or its start)."""
    said = normalised.split()
    return bool(said) and all((w.isdigit() and w.isascii()) or w in words.digits for w in said)


def _facts(text: str, lexicon: Lexicon, present: Set[str], words: Words) -> dict[str, str]:
    """The error message read out, and each kind of fact whose phrase was said (the first in the pack's order)."""
    facts: dict[str, str] = {}
    message = error_message(text, words)
    if message:
        facts["error_message"] = message
    for fact in lexicon.facts:
        phrase = fact.phrases.first(present)
        if phrase is not None:
            facts[fact.kind] = fact.values[phrase]
    return facts


def error_message(text: str, words: Words) -> str | None:
    """The message the caller reads out: quoted after a reporting verb ("it says 'invalid code'"), or reported
    by a thing that shows messages ("the app keeps saying invalid code"). Never a verb used otherwise: "the
    code shows up on my phone" has no message in it."""
    lowered = " ".join(text.lower().replace("’", "'").split())
    quoted, reported = _error_patterns(words)
    found = quoted.search(lowered) if quoted else None
    if found is None and reported is not None:
        found = reported.search(lowered)
    if found is None:
        return None
    message = found.group(1).strip(" '\"“”,")
    for stop in words.clause_breaks:  # speech has no quotes: the message ends where the caller's own words go on
        message = message.split(f" {stop} ")[0]
    return message if len(message) >= 3 else None


_ERROR_PATTERNS: dict[tuple[tuple[str, ...], ...], tuple[re.Pattern[str] | None, re.Pattern[str] | None]] = {}


def _error_patterns(words: Words) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    key = (
        tuple(words.error_verbs),
        tuple(words.error_phrases),
        tuple(words.error_subjects),
        tuple(words.error_not_after),
    )
    patterns = _ERROR_PATTERNS.get(key)
    if patterns is None:
        patterns = (None, None)
        if words.error_verbs:
            verbs = _alternatives(words.error_verbs)
            quoted = re.compile(rf"\b(?:{verbs})\s+(?:that\s+)?[\"'“]([^\"'”]{{3,80}})[\"'”]")
            reported = None
            if words.error_subjects or words.error_phrases:
                said = [rf"\b(?:{_alternatives(words.error_subjects)})\s+(?:[a-z']+\s+)?(?:{verbs})"]
                if words.error_phrases:
                    said.append(rf"\b(?:{_alternatives(words.error_phrases)})")
                refused = _alternatives(words.error_not_after) if words.error_not_after else "(?!)"
                reported = re.compile(rf"(?:{'|'.join(said)})\s+(?:that\s+)?(?!(?:{refused})\b)([^.?!]{{3,80}})")
            patterns = (quoted, reported)
        _ERROR_PATTERNS[key] = patterns
    return patterns


def _alternatives(phrases: list[str]) -> str:
    return "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))


def _language(lexicon: Lexicon, present: Set[str], norm: str) -> str | None:
    """Another language: more of its words (the pack lists each language's commonest) than of the pack's own
    function words, and at least two of them, or one in a sentence of one or two words ("hola")."""
    ours = sum(1 for w in norm.split() if w in lexicon.stop)
    best: tuple[int, str] | None = None
    for language, words in lexicon.other_language:
        hits = len(words.found(present))
        if hits > ours and (hits >= 2 or len(norm.split()) <= 2) and (best is None or hits > best[0]):
            best = (hits, language)
    return best[1] if best else None
