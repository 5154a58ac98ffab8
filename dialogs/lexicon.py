"""A pack's phrases and word lists, normalised once, as `dialogs.understanding` matches every utterance
against them (a pack is frozen once loaded, so its lexicon is built once: `BotPack.lexicon`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dialogs.text import PhraseFinder, Phrases, normalise

if TYPE_CHECKING:
    from dialogs.pack import BotPack


@dataclass(frozen=True)
class Keywords:
    """An intent's multi-word keywords: said as such, they make the intent near-certain."""

    intent: str
    phrases: Phrases


@dataclass(frozen=True)
class FactPhrases:
    """The phrases that name one kind of fact (a device, say), and the value each one means."""

    kind: str
    phrases: Phrases
    values: dict[str, str]


@dataclass(frozen=True)
class Lexicon:
    """Everything `dialogs.understanding.read` looks up in a pack, ready to look up."""

    markers: tuple[tuple[str, Phrases], ...]  # the plain marker lists, by marker name, in the order read lists them
    person_request: Phrases
    person_request_weak: Phrases
    person_request_exclude: tuple[str, ...]  # normalised, each with the spaces that make a word boundary
    distress: Phrases
    distress_terms: Phrases
    keywords: tuple[Keywords, ...]  # in the pack's order of intents
    keyword_phrases: frozenset[str]  # every intent's, normalised
    facts: tuple[FactPhrases, ...]
    other_language: tuple[tuple[str, Phrases], ...]
    stop: frozenset[str]
    attempt_verbs: frozenset[str]
    first_person: frozenset[str]
    finder: PhraseFinder  # every phrase above

    @classmethod
    def of(cls, pack: BotPack) -> Lexicon:
        """The pack's lexicon."""
        m = pack.markers
        markers = tuple(
            (name, Phrases(phrases))
            for name, phrases in (
                ("urgency", m.urgency),
                ("frustration", m.frustration),
                ("did_not_work", m.did_not_work),
                ("tried", m.tried),
                ("failure", m.failure),
                ("affirm", m.affirm),
                ("deny", m.deny),
                ("goodbye", m.goodbye),
                ("closing", m.closing),
                ("choose_first", m.choose_first),
                ("choose_second", m.choose_second),
            )
        )
        keywords = tuple(
            Keywords(intent.name, Phrases(k for k in intent.keywords if " " in k.strip())) for intent in pack.intents
        )
        facts = tuple(FactPhrases(kind, Phrases(values), values) for kind, values in pack.words.facts.items())
        other_language = tuple((language, Phrases(words)) for language, words in m.other_language.items())
        person_request, weak = Phrases(m.person_request), Phrases(m.person_request_weak)
        distress, terms = Phrases(m.distress), Phrases(m.distress_terms)
        every = [
            *(phrases for _, phrases in markers),
            person_request,
            weak,
            distress,
            terms,
            *(k.phrases for k in keywords),
            *(f.phrases for f in facts),
            *(phrases for _, phrases in other_language),
        ]
        return cls(
            markers=markers,
            person_request=person_request,
            person_request_weak=weak,
            person_request_exclude=tuple(f" {normalise(phrase)} " for phrase in m.person_request_exclude),
            distress=distress,
            distress_terms=terms,
            keywords=keywords,
            keyword_phrases=frozenset(norm for k in keywords for norm in k.phrases.normalised),
            facts=facts,
            other_language=other_language,
            stop=frozenset(pack.words.stop),
            attempt_verbs=frozenset(m.attempt_verbs),
            first_person=frozenset(pack.words.first_person),
            finder=PhraseFinder(norm for phrases in every for norm in phrases.normalised),
        )
