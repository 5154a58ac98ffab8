"""Bot packs: a contact center's domain as YAML, validated once at start-up.

A pack says what callers ask for (intents with example phrases and keywords), what each needs (slots),
what the bot may answer on its own (approved text and tools), what must always go to a person (risk
rules, policy exceptions, high values), which words signal urgency, frustration or distress, where
handoffs go (queues), and every word a caller or an agent hears: the bot's prompts, what Twilio says after
the stream, the agent's whisper and the reasons in the summary. Designers change the bot by editing the
pack, not the code.
"""

from __future__ import annotations

import hashlib
import threading
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from dialogs.errors import BotPackError
from dialogs.package import Category
from dialogs.routing import QueueConfig, RoutingRule

if TYPE_CHECKING:
    from dialogs.classifier import IntentClassifier
    from dialogs.lexicon import Lexicon

DEFAULT_PACK = "larkspur"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Escalation(_Strict):
    """An intent that always goes to a person: the category and trigger its handoff carries."""

    category: Category
    trigger: str
    urgency: Literal["low", "normal", "high"] = "normal"
    say: str | None = Field(None, description="what the caller hears first, e.g. an emergency instruction")


class Booking(_Strict):
    """A booking flow: find the caller's booking by caller ID, offer two options, book the one they pick."""

    find: str = Field(description="tool that finds the caller's booking (arguments: phone)")
    options: str = Field(description="tool that lists open options (its data field `options_field`)")
    book: str = Field(description="tool that books a choice (arguments: phone and `choice_argument`)")
    options_field: str = "slots"
    choice_argument: str = "slot"
    facts: dict[str, str] = Field(default_factory=dict, description="fact kind -> template over the booking found")


class Handling(_Strict):
    """How the bot serves an intent on its own.

    - `answer`: speak the approved text `answer` (one grounded step);
    - `tool`: collect `slots`, call `tool`, and speak `found` (a template over the tool's data) or
      `not_found`; `facts` templates turn the tool's data into key facts, and `value_field` names the data
      field that says what is at stake (for the pack's `high_value` rules);
    - `booking`: the booking flow in `booking`;
    - `end`: say goodbye and end the call.
    """

    kind: Literal["answer", "tool", "booking", "end"]
    answer: str | None = None
    tool: str | None = None
    found: str | None = None
    not_found: str | None = None
    offer_after: str | None = Field(None, description="a follow-up offer, e.g. to text a link")
    facts: dict[str, str] = Field(default_factory=dict, description="fact kind -> template over the tool's data")
    value_field: str | None = None
    booking: Booking | None = None

    @model_validator(mode="after")
    def _complete(self) -> Handling:
        if self.kind == "answer" and not self.answer:
            raise ValueError("an `answer` handling needs its approved `answer` text")
        if self.kind == "tool" and not self.tool:
            raise ValueError("a `tool` handling needs the `tool` it calls")
        if self.kind == "booking" and self.booking is None:
            raise ValueError("a `booking` handling needs `booking` (find, options, book)")
        return self


class Intent(_Strict):
    """Something callers call about."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    goal: str | None = Field(None, description="what the caller wants, for the summary (the description if unset)")
    queue: str
    examples: list[str] = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    slots: list[str] = Field(default_factory=list)
    handling: Handling | None = None
    escalate: Escalation | None = None
    area: str = Field("general", description="product area, for routing and the summary")

    @model_validator(mode="after")
    def _served_or_escalated(self) -> Intent:
        if (self.handling is None) == (self.escalate is None):
            raise ValueError("an intent needs exactly one of `handling` (self-service) or `escalate` (a person)")
        return self


class Slot(_Strict):
    """A piece of information an intent needs, and how to ask for it."""

    kind: Literal["digits", "text", "date"]
    prompt: str
    min_digits: int = 1
    max_digits: int = 20
    phrases: list[str] = Field(default_factory=list, description="recogniser hints while asking")
    reprompt: str | None = None


class Tool(_Strict):
    """A tool the dialog may call; `data` is the bundled data set it reads (relative to the pack)."""

    description: str
    data: str | None = None
    identifies_caller: bool = Field(
        False, description="it finds the caller's own record by caller ID: when it does, the call is caller_id_matched"
    )


class Markers(_Strict):
    """Words and phrases that signal something about the caller, matched on word boundaries.

    The `*_examples` are whole sentences; they train the classifier (`dialogs.classifier`), which hears a
    request for a person, or a caller in distress, in words no list has.
    """

    person_request: list[str]
    person_request_weak: list[str] = Field(
        default_factory=list,
        description="words that ask for a person only when the classifier hears the sentence as a request for one",
    )
    person_request_exclude: list[str] = Field(default_factory=list, description="phrases that only look like one")
    person_request_examples: list[str] = Field(default_factory=list, description="sentences asking for a person")
    urgency: list[str]
    frustration: list[str]
    distress: list[str] = Field(description="phrases that may mean an emergency, matched as phrases")
    distress_terms: list[str] = Field(
        default_factory=list, description="symptoms and crisis words: any one sends the call to the distress queue"
    )
    distress_examples: list[str] = Field(default_factory=list, description="sentences of callers in distress")
    did_not_work: list[str]
    tried: list[str] = Field(default_factory=list, description="the caller already tried something themselves")
    attempt_verbs: list[str] = Field(
        default_factory=list, description="verbs of trying ('reset', 'clicked'): after 'I' or 'we' they mean tried"
    )
    failure: list[str] = Field(default_factory=list, description="words that say an attempt failed")
    affirm: list[str]
    deny: list[str]
    goodbye: list[str]
    closing: list[str] = Field(
        default_factory=list, description="what callers say to end a call; with `goodbye` and `deny`, a clear closing"
    )
    choose_first: list[str] = Field(default_factory=list, description="picking the first of two options")
    choose_second: list[str] = Field(default_factory=list, description="picking the second of two options")
    other_language: dict[str, list[str]] = Field(default_factory=dict)


class IntentSwitch(_Strict):
    """A call that started as one of `after` and turned into `to` goes to a person with its own trigger."""

    after: list[str]
    to: str
    category: Category
    trigger: str
    urgency: Literal["low", "normal", "high"] = "high"


class PolicyException(_Strict):
    """`intent` raised in the middle of one of the `during` flows is outside self-service."""

    intent: str
    during: list[str]
    category: Category = "workflow_exception"
    trigger: str = "policy_exception"


class HighValue(_Strict):
    """`intent` on something worth more than `above` (the tool's value field) goes to a person."""

    intent: str
    above: float = Field(ge=0)
    trigger: str = "high_value_refund"


class Understanding(_Strict):
    """What teaches the classifier beyond the intents' own examples and keywords."""

    small_talk: list[str] = Field(default_factory=list, description="things callers say that ask for nothing")
    synonyms: dict[str, str] = Field(
        default_factory=dict, description="caller's word or phrase -> the pack's ('reimbursement' -> 'refund')"
    )


class Policy(_Strict):
    """Thresholds of the escalation policy, and the pack's own rules."""

    low_asr_confidence: float = Field(0.55, ge=0.0, le=1.0)
    low_confidence_turns: int = Field(2, ge=1)
    min_intent_score: float = Field(0.34, ge=0.0, le=1.0)
    risk_floor: float = Field(
        0.2, ge=0.0, le=1.0, description="an intent that always goes to a person, leading at least this sure, does"
    )
    strong_intent_score: float = Field(0.6, ge=0.0, le=1.0, description="an intent this sure is taken at its word")
    clear_intent_score: float = Field(0.9, ge=0.0, le=1.0, description="this sure needs no clarifying question")
    ambiguity_margin: float = Field(0.1, ge=0.0, le=1.0, description="two intents this close are asked about")
    person_request_score: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="the classifier's own request-for-a-person model (not shared with intents) finds it this likely",
    )
    person_request_weak_score: float = Field(
        0.05, ge=0.0, le=1.0, description="a weak person word ('someone') counts when that model is at least this sure"
    )
    distress_score: float = Field(
        0.1, ge=0.0, le=1.0, description="the classifier's own model of distress, at least this sure (err towards help)"
    )
    max_clarifications: int = Field(1, ge=0)
    max_failures: int = Field(2, ge=1)
    max_no_input: int = Field(2, ge=1)
    callback_digits: int = Field(10, ge=4, le=15, description="digits a keyed callback number has")
    distress_queue: str | None = Field(None, description="where emergencies go (the default queue if unset)")
    language_queue: str | None = Field(None, description="where callers in other languages go")
    intent_switches: list[IntentSwitch] = Field(default_factory=list)
    exceptions: list[PolicyException] = Field(default_factory=list)
    high_value: list[HighValue] = Field(default_factory=list)


class Topic(_Strict):
    """A word that names a topic (for the routing question and its keypad digits) and the intent it means."""

    word: str
    intent: str
    issue: str = Field(
        "", description="the summary's issue when the caller named only this topic: no more is claimed than was said"
    )


class CallbackWindow(_Strict):
    """A part of the day a callback can be promised in: its words, how it is said, and its local hours."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    words: list[str]
    spoken: str
    hours: tuple[int, int] = Field(description="local start and end hour, e.g. [8, 12]")


class Recognition(_Strict):
    """What the recogniser listens for. `phrases` (empty: free form) narrows every open question to the pack's
    own sentences, for an engine that recognises this language well only with a grammar."""

    phrases: list[str] = Field(default_factory=list)
    tts_voice: str | None = Field(None, description="the bot's voice for this language (espeak-ng, e.g. ko)")


class CallerProfile(_Strict):
    """The tool that reads the caller's profile by caller ID, and the data field that holds their tier."""

    tool: str
    tier_field: str = "tier"


class Words(_Strict):
    """The pack's language, as the understanding and the wording need it."""

    stop: list[str] = Field(description="function words that carry no topic")
    topic_fillers: list[str] = Field(
        default_factory=list, description="words around a bare topic answer ('it's about an order') that add no need"
    )
    misheard: list[str] = Field(
        default_factory=list, description="short words a recogniser puts where it missed one ('uh', 'the', 'in')"
    )
    digits: dict[str, str] = Field(description="spoken digit -> digit ('four' -> '4')")
    digits_after_another: list[str] = Field(default_factory=list, description="digits only after another ('oh')")
    and_: str = Field(alias="and")
    minute: str = Field(description="one minute")
    minutes: str = Field(description="'{n} minutes'")
    on_file: str = Field(description="a phone number we do not have, said as a number")
    soon: str = Field(description="a callback as soon as someone is free, as said to the caller")
    first_person: list[str] = Field(default_factory=list, description="'i', \"i've\", 'we': who tried something")
    error_verbs: list[str] = Field(default_factory=list, description="verbs that report an error message ('says')")
    error_phrases: list[str] = Field(
        default_factory=list, description="phrases that introduce a message on their own ('the error is')"
    )
    error_subjects: list[str] = Field(
        default_factory=list, description="things that show messages ('app', 'screen'): '<subject> says <message>'"
    )
    error_not_after: list[str] = Field(
        default_factory=list, description="words after the verb that mean no message follows ('shows up')"
    )
    clause_breaks: list[str] = Field(default_factory=list, description="words where a spoken message ends ('and')")
    facts: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="fact kind -> {phrase said: fact value}, e.g. device: {iphone: iPhone}"
    )
    sending: dict[str, str] = Field(default_factory=dict, description="fact kind -> what 'I'm sending' calls it")
    sending_said: str = Field(description="what the caller said, in 'I'm sending ...'")
    sending_tried: str = Field(description="what was already tried, in 'I'm sending ...'")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AgentWords(_Strict):
    """What an agent hears (the whisper, the callback dialer) and reads (the summary's fixed parts)."""

    incoming: str = Field(description="'Incoming call for {queue}.'")
    urgent: str
    frustrated: str
    issue: str
    facts: str = Field(description="'Facts: {facts}.'")
    reason: str = Field(description="'Reason: {reason}'")
    press_one: str
    press_one_short: str = Field("Press 1.", description="after the short brief of a conference transfer")
    brief_incoming: str = Field("{queue} call.", description="the short brief's first words ('Billing call.')")
    no_key: str
    caller_gone: str
    no_summary: str
    topic_unknown: str
    goal_unknown: str
    in_callers_words: str = Field(description="the second line of the issue: '... \"{words}\"'")
    fallback_issue: str
    fallback_goal: str
    callback_intro: str
    callback_press_one: str
    calling_customer: str
    callback_not_needed: str


class AfterStreamWords(_Strict):
    """What the caller hears from Twilio once the stream has ended: failed transfers, callbacks, voicemail."""

    sorry_transfer: str
    still_trying: str
    nobody_available: str = Field(description="'... nobody on our {team} team could take your call ...'")
    callback_or_message: str
    callback_set: str
    leave_message: str
    voicemail_thanks: str
    no_message: str
    goodbye: str
    machine_message: str = Field(description="left on a callee's answering machine: '{company} ...'")


class BotPack(_Strict):
    """A whole bot: its domain, policy and words."""

    company: str
    language: str = "en"
    say_language: str | None = Field(None, description="TwiML <Say> language after the stream, e.g. en-US")
    default_queue: str
    queues: list[QueueConfig]
    routing_rules: list[RoutingRule] = Field(default_factory=list)
    intents: list[Intent]
    topics: list[Topic] = Field(default_factory=list, description="routing-question answers; keys 1, 2, 3...")
    slots: dict[str, Slot] = Field(default_factory=dict)
    tools: dict[str, Tool] = Field(default_factory=dict)
    toolbox: str | None = Field(None, description="the class that runs the tools, as 'package.module:Class'")
    caller_profile: CallerProfile | None = None
    recognition: Recognition = Field(default_factory=Recognition)
    markers: Markers
    understanding: Understanding = Field(default_factory=Understanding)
    policy: Policy = Field(default_factory=Policy)
    callback_windows: list[CallbackWindow] = Field(min_length=1)
    words: Words
    prompts: dict[str, str]
    frustrated_prompts: dict[str, str] = Field(
        default_factory=dict,
        description="once the caller is frustrated: shorter prompts (by prompt id, e.g. clarify, slot:order_number) "
        "that offer a person",
    )
    reasons: dict[str, str] = Field(description="trigger -> the reason's detail, as the agent reads and hears it")
    attempts: dict[str, str] = Field(description="what the bot tried, as the summary lists it")
    agent: AgentWords
    after_stream: AfterStreamWords
    dispositions: list[str] = Field(
        default_factory=lambda: ["resolved", "follow_up", "callback_scheduled", "transferred", "caller_left"],
        min_length=1,
        description="what an agent's wrap-up may say became of a handed-off call",
    )
    source: str = Field("", exclude=True)
    _classifier: IntentClassifier | None = PrivateAttr(default=None)
    _lexicon: Lexicon | None = PrivateAttr(default=None)

    def classifier(self) -> IntentClassifier:
        """The pack's intent classifier, trained on first use (`load_pack` trains it, so start-up pays)."""
        classifier: IntentClassifier | None = self._private("_classifier")
        if classifier is None:
            from dialogs.classifier import IntentClassifier  # the classifier reads packs: imported late

            classifier = self._classifier = IntentClassifier.train(self)
        return classifier

    def lexicon(self) -> Lexicon:
        """The pack's phrases normalised once, as reading an utterance looks them up (built on first use)."""
        lexicon: Lexicon | None = self._private("_lexicon")
        if lexicon is None:
            from dialogs.lexicon import Lexicon  # the lexicon reads packs: imported late

            lexicon = self._lexicon = Lexicon.of(self)
        return lexicon

    def _private(self, name: str) -> Any:
        """A private attribute, read from pydantic's own store: `self._name` goes through pydantic's __getattr__,
        microseconds that every utterance would pay (it needs the classifier and the lexicon)."""
        return (self.__pydantic_private__ or {}).get(name)

    @model_validator(mode="after")
    def _references_resolve(self) -> BotPack:
        problems = [*self._queue_problems(), *self._intent_problems(), *self._word_problems()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _queue_problems(self) -> list[str]:
        queues = {q.name for q in self.queues}
        problems: list[str] = []
        if self.default_queue not in queues:
            problems.append(f"default_queue: no queue named {self.default_queue!r}")
        for i, intent in enumerate(self.intents):
            if intent.queue not in queues:
                problems.append(f"intents[{i}].queue: no queue named {intent.queue!r}")
        for i, rule in enumerate(self.routing_rules):
            if rule.queue not in queues:
                problems.append(f"routing_rules[{i}].queue: no queue named {rule.queue!r}")
        for i, q in enumerate(self.queues):
            if q.overflow.to_queue is not None and q.overflow.to_queue not in queues:
                problems.append(f"queues[{i}].overflow.to_queue: no queue named {q.overflow.to_queue!r}")
        for key in ("distress_queue", "language_queue"):
            queue = getattr(self.policy, key)
            if queue is not None and queue not in queues:
                problems.append(f"policy.{key}: no queue named {queue!r}")
        return problems

    def _intent_problems(self) -> list[str]:
        names = [i.name for i in self.intents]
        known = set(names)
        problems: list[str] = []
        for i, intent in enumerate(self.intents):
            for j, slot in enumerate(intent.slots):
                if slot not in self.slots:
                    problems.append(f"intents[{i}].slots[{j}]: no slot named {slot!r}")
            handling = intent.handling
            tools = [handling.tool] if handling and handling.tool else []
            if handling and handling.booking:
                tools += [handling.booking.find, handling.booking.options, handling.booking.book]
            problems += [f"intents[{i}].handling: no tool named {t!r}" for t in tools if t not in self.tools]
        if self.caller_profile is not None and self.caller_profile.tool not in self.tools:
            problems.append(f"caller_profile.tool: no tool named {self.caller_profile.tool!r}")
        for i, topic in enumerate(self.topics):
            if topic.intent not in known:
                problems.append(f"topics[{i}].intent: no intent named {topic.intent!r}")
        rules: list[tuple[str, list[str]]] = [
            *((f"policy.intent_switches[{i}]", [*s.after, s.to]) for i, s in enumerate(self.policy.intent_switches)),
            *((f"policy.exceptions[{i}]", [e.intent, *e.during]) for i, e in enumerate(self.policy.exceptions)),
            *((f"policy.high_value[{i}]", [h.intent]) for i, h in enumerate(self.policy.high_value)),
        ]
        problems += [f"{where}: no intent named {n!r}" for where, used in rules for n in used if n not in known]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"intents: duplicate names {', '.join(duplicates)}")
        return problems

    def _word_problems(self) -> list[str]:
        problems: list[str] = []
        for section, have, needed in (
            ("prompts", self.prompts, REQUIRED_PROMPTS),
            ("reasons", self.reasons, REQUIRED_REASONS | self._rule_triggers()),
            ("attempts", self.attempts, REQUIRED_ATTEMPTS),
        ):
            missing = sorted(needed - have.keys())
            if missing:
                problems.append(f"{section}: missing {', '.join(missing)}")
        return problems

    def _rule_triggers(self) -> set[str]:
        policy = self.policy
        triggers = {s.trigger for s in policy.intent_switches} | {e.trigger for e in policy.exceptions}
        return triggers | {h.trigger for h in policy.high_value}

    def topic_in(self, normalised: str) -> str | None:
        """The intent of the first topic word in the (normalised) text, singular or plural."""
        words = normalised.split()
        for topic in self.topics:
            if topic.word in words or f"{topic.word}s" in words:
                return topic.intent
        return None

    def intent(self, name: str) -> Intent:
        found = self.find_intent(name)
        if found is None:
            raise KeyError(f"the pack has no intent named {name!r}")
        return found

    def find_intent(self, name: str) -> Intent | None:
        return next((i for i in self.intents if i.name == name), None)

    def window(self, name: str) -> CallbackWindow | None:
        return next((w for w in self.callback_windows if w.name == name), None)

    def prompt(self, key: str, **values: str) -> str:
        return self.prompts[key].format(**values)

    def spoken(self, prompt_id: str, text: str, frustrated: bool, **values: str) -> tuple[str, str]:
        """The prompt to say and its id: the short one that offers a person once the caller is frustrated."""
        short = self.frustrated_prompts.get(prompt_id) if frustrated else None
        return (short.format(**values), f"{prompt_id}:short") if short else (text, prompt_id)

    def reason(self, trigger: str, **values: object) -> str:
        """The detail of a handoff's reason, from the pack's `reasons` (the trigger's own name if absent)."""
        template = self.reasons.get(trigger)
        return template.format(**values) if template else trigger.replace("_", " ")

    def attempt(self, key: str, **values: object) -> str:
        return self.attempts[key].format(**values)


REQUIRED_PROMPTS = frozenset({
    "handoff_wait", "callback_offer_closed", "callback_offer_busy", "callback_number", "callback_number_other",
    "callback_window", "callback_confirm", "voicemail_intro", "ticket_intro", "handoff_sending",
    "greeting", "clarify", "clarify_between", "handoff", "handoff_queue_question",
    "low_confidence", "low_confidence_first", "no_input", "goodbye", "anything_else", "what_else", "language_handoff",
    "distress", "frustrated_offer", "not_found_retry", "tool_failed", "slot_confirm_conflict", "slot_confirm_length",
    "already_tried",
    "booking_found", "booking_done", "booking_none", "booking_pick_again",
})  # fmt: skip
REQUIRED_REASONS = frozenset({
    "distress_marker", "other_language", "risk", "explicit_request", "dtmf_zero", "prior_attempt",
    "negative_sentiment", "no_input", "low_asr_confidence", "contradiction", "slot_failed", "tool_failed",
    "not_found", "not_understood", "step_failed", "booking_not_found", "booking_pick_failed",
    "stream_lost", "recognizer_failed", "dialog_error", "media_unusable",
})  # fmt: skip
REQUIRED_ATTEMPTS = frozenset({
    "answered", "answer_given", "prior_attempt", "step_failed", "step_failed_result", "tool", "tool_failed",
    "tool_not_found", "booking_found", "booking_none", "booking_none_result", "booked", "booked_result",
})  # fmt: skip


_LOADED: dict[tuple[str, str], BotPack] = {}  # by file name and content: a pack is frozen, so it is shared
_LOADING = threading.Lock()


def load_pack(path: Path | None = None) -> BotPack:
    """Load a pack (the bundled default when `path` is None) and train its classifier; BotPackError names file,
    path and problem. The same file with the same content loads once per process."""
    name, text = _read(path)
    key = (name, hashlib.sha256(text.encode()).hexdigest())
    with _LOADING:
        pack = _LOADED.get(key)
        if pack is None:
            pack = _parse(name, text)
            pack.classifier()
            pack.lexicon()
            _LOADED[key] = pack
    return pack


def _read(path: Path | None) -> tuple[str, str]:
    if path is None:
        resource = files("dialogs.packs").joinpath(f"{DEFAULT_PACK}.yaml")
        name, text = f"dialogs/packs/{DEFAULT_PACK}.yaml", resource.read_text(encoding="utf-8")
    else:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BotPackError(name, "", f"cannot read the file: {exc.strerror or exc}") from exc
    return name, text


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml reads a pack ten times faster


def _parse(name: str, text: str) -> BotPack:
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # a safe loader: libyaml's when it is there
    except yaml.YAMLError as exc:
        raise BotPackError(name, "", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise BotPackError(name, "", "a bot pack must be a mapping (company, queues, intents, ...)")
    try:
        return BotPack.model_validate({**raw, "source": name})
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise BotPackError(name, _path(err["loc"]), err["msg"].removeprefix("Value error, ") + more) from None


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
