"""The intent classifier: trained from the bot pack when it loads, explainable for every decision.

Why a classifier and not keyword lists alone: callers describe their problem in words no list has ("the
box came crushed", "my throat feels tight since the new pills"), and a recogniser drops or swaps words. A
linear model over word and character n-grams (scikit-learn: TF-IDF and logistic regression) generalises from
the pack's examples to such phrasings, stays fast (about a millisecond an utterance), and can say which of
the caller's words pushed it towards its answer.

Training uses scikit-learn; scoring one utterance reads the fitted vocabularies, IDF weights and
coefficients directly (`_Scorer`), the same arithmetic without the library's per-call input checks, which
cost ten times the arithmetic on a single short sentence (`tests/dialogs/test_classifier.py` holds the two
to the same probabilities).

It learns one label per intent, and three of its own: `PERSON` (asking for a person), `DISTRESS` (a caller
in distress) and `NOTHING` (small talk, asking for nothing). Every label's examples come from the pack.

Each label has its own one-vs-rest model. `Guess.probability` shares the belief out among the labels (which
one fits best); `Guess.alone` is the label's own model by itself. A request for a person and distress come
with any topic ("can one of your staff check my appointment"), so they are read from `alone`: shared, a clear
topic drowned them out, and a recogniser's dropped word more so (at 15 % WER on the paraphrase set, recall of
requests for a person went from 90.7 % to 94.6 %).

A recogniser loses words, and the model must not hang a label on one of them: each example of three words
or more is also learnt as three misheard copies, with a word lost (10 %) or swapped for one of the pack's
`misheard` small words (5 %) now and then, seeded. On the paraphrase set at 15 % WER (8 seeds) this takes
recall of the safety triggers from 94.4 % to 95.8 % and intent accuracy from 92.9 % to 93.4 %; clean, intent
accuracy goes from 97.8 % to 98.1 % and false handoffs from 0.8 % to 0 %. Fewer epochs over the larger set
keep training about as fast. Such a model leans harder on the words it knows, so a short sentence needs more
certainty before the classifier alone calls it distress (`dialogs.understanding`).

`alone` counts only what the caller's words say: a label's model gives every sentence its prior (its
intercept), and in a small pack that prior alone can be near one half. A sentence of words the classifier
never saw ("네", a plain yes, in a pack without it) then looked like distress. So a label whose model the
words do not push towards has `alone` 0: no evidence, no trigger.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import FeatureUnion

from dialogs.pack import BotPack
from dialogs.text import normalise

PERSON = "_person"
DISTRESS = "_distress"
NOTHING = "_nothing"
_CLITIC_S = re.compile(r"(\w)'s(?!\S)")
_OWN_LABELS = frozenset({PERSON, DISTRESS, NOTHING})
_WORDS_SHOWN = 3  # words that decided a guess, for the Explain action
_EXPLAINED = 3  # guesses, best first, that get their deciding words
_ALPHA = 3e-5  # regularisation: light, for few examples a label
_EPOCHS = 8  # passes over the examples and their misheard copies
_SEED = 7  # training is deterministic: the same pack always gives the same classifier
_MISHEARD_COPIES = 3  # misheard copies of each example (different losses each)
_MISHEARD_MIN_WORDS = 3  # shorter examples are learnt only as written
_LOST_WORD = 0.1  # in the misheard copy of an example, the chance each word is lost
_SWAPPED_WORD = 0.05  # and that it is swapped for one of the pack's `misheard` words
_CLASS_WEIGHT: str | None = "balanced"  # labels with more examples get no head start on words never seen


@dataclass(frozen=True)
class Guess:
    """A label, how likely the classifier finds it (0..1), and the caller's words that counted most for it."""

    label: str
    probability: float
    words: tuple[str, ...]
    alone: float = 0.0  # the label's own one-vs-rest model, not shared; 0 when the words do not point to it

    @property
    def is_intent(self) -> bool:
        return self.label not in _OWN_LABELS


class Synonyms:
    """Replaces callers' words and phrases with the pack's ('reimbursement' -> 'refund'), on word boundaries."""

    def __init__(self, pairs: dict[str, str]) -> None:
        self._pairs = {" ".join(k.split()): v for k, v in pairs.items() if k.strip()}
        longest_first = sorted(self._pairs, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<!\S)(" + "|".join(re.escape(k) for k in longest_first) + r")(?!\S)")
            if longest_first
            else None
        )

    def apply(self, normalised: str) -> str:
        normalised = _CLITIC_S.sub(r"\1 's", normalised)
        if self._pattern is None:
            return normalised
        return self._pattern.sub(lambda m: self._pairs[m.group(1)], normalised)


class _Block:
    """One fitted TF-IDF vectorizer, as plain lookups: n-gram -> column, and the column's IDF weight.

    Character n-grams (`char_wb`) never cross a word, so a sentence's are its words' one after another: the
    columns of each of `words` (the words the pack knows) are looked up once, when the classifier is built."""

    def __init__(self, vectorizer: TfidfVectorizer, offset: int, words: Iterable[str] = ()) -> None:
        self.analyse = vectorizer.build_analyzer()
        self.columns: dict[str, int] = {term: int(col) + offset for term, col in vectorizer.vocabulary_.items()}
        self.idf: dict[int, float] = {offset + col: float(idf) for col, idf in enumerate(vectorizer.idf_)}
        self.by_word = vectorizer.analyzer == "char_wb"
        self.word_columns = {word: self.known(word) for word in words} if self.by_word else {}

    def known(self, text: str) -> list[int]:
        """The columns of the text's n-grams that are in the vocabulary, in the order the n-grams come."""
        return [column for column in map(self.columns.get, self.analyse(text)) if column is not None]

    def features(self, text: str) -> tuple[list[int], list[float]]:
        """Sublinear TF times IDF, L2-normalised within the block (what TfidfVectorizer.transform computes)."""
        if self.by_word:
            said = [self.word_columns.get(word) or self.known(word) for word in text.split()]  # or a new word's
            counts = Counter(chain.from_iterable(said))  # each column once, in the order first said
        else:
            counts = Counter(self.known(text))
        if not counts:
            return [], []
        idf = self.idf
        weights = [idf[c] if n == 1 else (1.0 + math.log(n)) * idf[c] for c, n in counts.items()]  # 1 + log 1 is 1
        squares = 0.0
        for weight in weights:  # added in order, one by one: the same sum on every Python version
            squares += weight * weight
        norm = math.sqrt(squares)
        return list(counts), [w / norm for w in weights]


class _Scorer:
    """The fitted model's probabilities for one utterance: blocks of features, then one-vs-rest logistic
    scores normalised to sum to one (what SGDClassifier(loss="log_loss").predict_proba computes)."""

    def __init__(self, features: FeatureUnion, model: SGDClassifier) -> None:
        vectorizers: list[TfidfVectorizer] = [vectorizer for _name, vectorizer in features.transformer_list]
        words = [t for v in vectorizers if v.analyzer == "word" for t in v.vocabulary_ if " " not in t]
        self.blocks: list[_Block] = []
        offset = 0
        for vectorizer in vectorizers:
            self.blocks.append(_Block(vectorizer, offset, words))
            offset += len(vectorizer.vocabulary_)
        # A feature's coefficients, one for each label, side by side: an utterance's hundred-odd features are a
        # hundred-odd short rows, not a strided gather across every label's row (cold on a busy server)
        self.by_feature = np.ascontiguousarray(np.asarray(model.coef_, dtype=np.float64).T)
        self.intercept = np.asarray(model.intercept_, dtype=np.float64)

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        columns: list[int] = []
        values: list[float] = []
        for block in self.blocks:
            c, v = block.features(text)
            columns += c
            values += v
        return np.asarray(columns, dtype=np.intp), np.asarray(values, dtype=np.float64)

    def evidence(self, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
        """How far the utterance's features push each label's score, the label's prior (intercept) apart."""
        result: np.ndarray = self.by_feature[columns].T @ values
        return result

    def logistic(self, columns: np.ndarray, values: np.ndarray, evidence: np.ndarray | None = None) -> np.ndarray:
        """Each label's own one-vs-rest probability: independent of the others, so they need not sum to one."""
        pushed = self.evidence(columns, values) if evidence is None else evidence
        result: np.ndarray = 1.0 / (1.0 + np.exp(-(pushed + self.intercept)))
        return result

    def probabilities(self, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
        return _shared(self.logistic(columns, values))


def _as_misheard(texts: list[str], labels: list[str], small_words: list[str]) -> tuple[list[str], list[str]]:
    """Each example of three words or more once more, as a recogniser might hear it: a word lost or swapped for
    a short one now and then (seeded, so a pack always trains the same). The model then does not hang a label
    on one word a caller's line can drop (module docstring)."""
    rng = random.Random(_SEED)
    copies: list[str] = []
    copy_labels: list[str] = []
    for text, label in [pair for _ in range(_MISHEARD_COPIES) for pair in zip(texts, labels, strict=True)]:
        words = text.split()
        if len(words) < _MISHEARD_MIN_WORDS:
            continue
        heard: list[str] = []
        for word in words:
            draw = rng.random()
            if draw < _LOST_WORD:
                continue
            heard.append(rng.choice(small_words) if small_words and draw < _LOST_WORD + _SWAPPED_WORD else word)
        if heard and heard != words:
            copies.append(" ".join(heard))
            copy_labels.append(label)
    return copies, copy_labels


def _shared(logistic: np.ndarray) -> np.ndarray:
    """The labels' one-vs-rest probabilities normalised to sum to one: which label fits best."""
    total = logistic.sum()
    return logistic / total if total > 0 else np.full(len(logistic), 1.0 / len(logistic))


class IntentClassifier:
    """A pack's classifier. Train once per pack (`train`), then `guesses` per utterance."""

    def __init__(
        self, features: FeatureUnion, model: SGDClassifier, synonyms: Synonyms, small_words: frozenset[str]
    ) -> None:
        self._features = features
        self._model = model
        self._scorer = _Scorer(features, model)
        self._synonyms = synonyms
        self.labels: tuple[str, ...] = tuple(str(label) for label in model.classes_)
        self._shown = _shown_words(features.get_feature_names_out(), small_words)
        self._explains = np.asarray([word is not None for word in self._shown], dtype=bool)

    @classmethod
    def train(cls, pack: BotPack) -> IntentClassifier:
        """Fit on the pack's intents (examples and keywords), person requests, distress and small talk."""
        synonyms = Synonyms({normalise(k): normalise(v) for k, v in pack.understanding.synonyms.items()})
        texts: list[str] = []
        labels: list[str] = []

        def add(label: str, phrases: Sequence[str]) -> None:
            for phrase in phrases:
                text = synonyms.apply(normalise(phrase))
                if text:
                    texts.append(text)
                    labels.append(label)

        for intent in pack.intents:
            add(intent.name, [*intent.examples, *intent.keywords])
        for topic in pack.topics:  # "account", the answer to "account, order, or appointment?"
            add(topic.intent, [topic.word, f"{topic.word}s"])
        markers = pack.markers
        add(PERSON, [*markers.person_request, *markers.person_request_examples])
        add(DISTRESS, [*markers.distress, *markers.distress_terms, *markers.distress_examples])
        add(NOTHING, pack.understanding.small_talk)
        features = FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w[\w']*\b")),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        ])  # fmt: skip
        misheard, misheard_labels = _as_misheard(texts, labels, pack.words.misheard)
        texts, labels = texts + misheard, labels + misheard_labels
        matrix = features.fit_transform(texts)
        # logistic loss (probabilities), fitted by SGD: a few hundred ms for a pack, where lbfgs takes seconds
        model = SGDClassifier(
            loss="log_loss", alpha=_ALPHA, class_weight=_CLASS_WEIGHT, max_iter=_EPOCHS, tol=None, random_state=_SEED
        )
        model.fit(matrix, labels)
        return cls(features, model, synonyms, frozenset(pack.words.stop))

    def prepared(self, normalised: str) -> str:
        """The utterance as the classifier reads it: the pack's synonyms in place of the caller's words."""
        return self._synonyms.apply(normalised)

    def guesses(self, normalised: str, top: int = 5) -> tuple[Guess, ...]:
        """The most likely labels for one (normalised) utterance, best first, each with its deciding words."""
        text = self._synonyms.apply(normalised)
        if not text:
            return ()
        columns, values = self._scorer.features(text)
        pushes = self._scorer.by_feature[columns].T  # each label's coefficient of each feature said
        evidence: np.ndarray = pushes @ values  # what `_Scorer.evidence` computes
        logistic = self._scorer.logistic(columns, values, evidence)
        probabilities = _shared(logistic)
        alone = np.where(evidence > 0, logistic, 0.0)  # a prior is not evidence (module docstring)
        order = np.argsort(-probabilities)[:top].tolist()
        labels, shared, own = self.labels, probabilities.tolist(), alone.tolist()
        said, explains = columns.tolist(), self._explains[columns]
        explained = [
            Guess(
                labels[i],
                round(shared[i], 3),
                self._deciding_words(said, explains, values * pushes[i], text),
                round(own[i], 3),
            )
            for i in order[:_EXPLAINED]
        ]
        return (*explained, *(Guess(labels[i], round(shared[i], 3), (), round(own[i], 3)) for i in order[_EXPLAINED:]))

    def library_probabilities(self, normalised: str) -> np.ndarray:
        """scikit-learn's own predict_proba for the utterance: what the fast scorer must agree with (tests)."""
        return np.asarray(self._model.predict_proba(self._features.transform([self.prepared(normalised)]))[0])

    def fast_probabilities(self, normalised: str) -> np.ndarray:
        """The probabilities `guesses` ranks, by the fast scorer."""
        return self._scorer.probabilities(*self._scorer.features(self.prepared(normalised)))

    def _deciding_words(
        self, present: list[int], explains: np.ndarray, pushed: np.ndarray, text: str
    ) -> tuple[str, ...]:
        """The caller's words whose features pushed hardest towards a label (word n-grams only: readable).

        `pushed` is each present feature's value times the label's coefficient; `explains`, whether the feature
        is a word n-gram that can explain (`_shown_words`). The features are taken hardest push first, as long
        as they push towards the label at all."""
        order = np.argsort(-pushed)
        candidates = order[((pushed > 0) & explains)[order]].tolist()
        words: list[str] = []
        for index in candidates:
            feature = self._shown[present[index]]
            if feature is not None and feature in text and feature not in words:
                words.append(feature)
                if len(words) == _WORDS_SHOWN:
                    break
        return tuple(words)


def _shown_words(names: Sequence[str], small_words: frozenset[str]) -> list[str | None]:
    """By column: the word n-gram a feature is, if it can explain a guess (not all small words: "the" explains
    nothing); None for character n-grams and small words."""
    shown: list[str | None] = []
    for name in names:
        feature = str(name).removeprefix("words__") if str(name).startswith("words__") else None
        telling = feature is not None and any(word not in small_words for word in feature.split())
        shown.append(feature if telling else None)
    return shown
