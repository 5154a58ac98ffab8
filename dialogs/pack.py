"""Bot packs: a contact center's domain as YAML, validated once at start-up.

A pack says what callers ask for (intents with example phrases and keywords), what each needs (slots),
what the bot may answer on its own (approved text and tools), what must always go to a person (risk
rules), which words signal urgency, frustration or distress, where handoffs go (queues), and every
prompt the bot speaks. Designers change the bot by editing the pack, not the code.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dialogs.errors import BotPackError
from dialogs.package import Category
from dialogs.routing import QueueConfig, RoutingRule

DEFAULT_PACK = "larkspur"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Escalation(_Strict):
    """An intent that always goes to a person: the category and trigger its handoff carries."""

    category: Category
    trigger: str
    urgency: Literal["low", "normal", "high"] = "normal"
    say: str | None = Field(None, description="what the caller hears first, e.g. an emergency instruction")


class Handling(_Strict):
    """How the bot serves an intent on its own.

    - `answer`: speak the approved text `answer` (one grounded step);
    - `tool`: collect `slots`, call `tool`, and speak `found` (a template over the tool's data) or
      `not_found`;
    - `reschedule`: the appointment flow (find the caller's appointment, offer slots, book one);
    - `end`: say goodbye and end the call.
    """

    kind: Literal["answer", "tool", "reschedule", "end"]
    answer: str | None = None
    tool: str | None = None
    found: str | None = None
    not_found: str | None = None
    offer_after: str | None = Field(None, description="a follow-up offer, e.g. to text a link")


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


class Markers(_Strict):
    """Words and phrases that signal something about the caller, matched on word boundaries."""

    person_request: list[str]
    person_request_exclude: list[str] = Field(default_factory=list, description="phrases that only look like one")
    urgency: list[str]
    frustration: list[str]
    distress: list[str]
    did_not_work: list[str]
    affirm: list[str]
    deny: list[str]
    goodbye: list[str]
    other_language: dict[str, list[str]] = Field(default_factory=dict)


class Policy(_Strict):
    """Thresholds of the escalation policy."""

    low_asr_confidence: float = Field(0.55, ge=0.0, le=1.0)
    low_confidence_turns: int = Field(2, ge=1)
    min_intent_score: float = Field(0.34, ge=0.0, le=1.0)
    max_clarifications: int = Field(1, ge=0)
    max_failures: int = Field(2, ge=1)
    max_no_input: int = Field(2, ge=1)
    high_value_amount: float = Field(250.0, ge=0)
    distress_queue: str | None = Field(None, description="where emergencies go (the default queue if unset)")
    language_queue: str | None = Field(None, description="where callers in other languages go")


class Topic(_Strict):
    """A word that names a topic (for the routing question and its keypad digits) and the intent it means."""

    word: str
    intent: str


class BotPack(_Strict):
    """A whole bot: its domain, policy and words."""

    company: str
    language: str = "en"
    default_queue: str
    queues: list[QueueConfig]
    routing_rules: list[RoutingRule] = Field(default_factory=list)
    intents: list[Intent]
    topics: list[Topic] = Field(default_factory=list, description="routing-question answers; keys 1, 2, 3...")
    slots: dict[str, Slot] = Field(default_factory=dict)
    tools: dict[str, Tool] = Field(default_factory=dict)
    markers: Markers
    policy: Policy = Field(default_factory=Policy)
    prompts: dict[str, str]
    source: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _references_resolve(self) -> BotPack:
        queues = {q.name for q in self.queues}
        problems: list[str] = []
        if self.default_queue not in queues:
            problems.append(f"default_queue: no queue named {self.default_queue!r}")
        for i, intent in enumerate(self.intents):
            if intent.queue not in queues:
                problems.append(f"intents[{i}].queue: no queue named {intent.queue!r}")
            for j, slot in enumerate(intent.slots):
                if slot not in self.slots:
                    problems.append(f"intents[{i}].slots[{j}]: no slot named {slot!r}")
            tool = intent.handling.tool if intent.handling else None
            if tool is not None and tool not in self.tools:
                problems.append(f"intents[{i}].handling.tool: no tool named {tool!r}")
        for i, rule in enumerate(self.routing_rules):
            if rule.queue not in queues:
                problems.append(f"routing_rules[{i}].queue: no queue named {rule.queue!r}")
        for i, q in enumerate(self.queues):
            if q.overflow.to_queue is not None and q.overflow.to_queue not in queues:
                problems.append(f"queues[{i}].overflow.to_queue: no queue named {q.overflow.to_queue!r}")
        intent_names = {i.name for i in self.intents}
        for i, topic in enumerate(self.topics):
            if topic.intent not in intent_names:
                problems.append(f"topics[{i}].intent: no intent named {topic.intent!r}")
        for key in ("distress_queue", "language_queue"):
            queue = getattr(self.policy, key)
            if queue is not None and queue not in queues:
                problems.append(f"policy.{key}: no queue named {queue!r}")
        missing = sorted(REQUIRED_PROMPTS - self.prompts.keys())
        if missing:
            problems.append(f"prompts: missing {', '.join(missing)}")
        names = [i.name for i in self.intents]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"intents: duplicate names {', '.join(duplicates)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def topic_in(self, normalised: str) -> str | None:
        """The intent of the first topic word in the (normalised) text, singular or plural."""
        words = normalised.split()
        for topic in self.topics:
            if topic.word in words or f"{topic.word}s" in words:
                return topic.intent
        return None

    def intent(self, name: str) -> Intent:
        return next(i for i in self.intents if i.name == name)

    def prompt(self, key: str, **values: str) -> str:
        return self.prompts[key].format(**values)


REQUIRED_PROMPTS = frozenset({
    "handoff_wait", "callback_offer_closed", "callback_offer_busy", "callback_number", "callback_number_other",
    "callback_window", "callback_confirm", "voicemail_intro", "ticket_intro",
    "greeting", "clarify", "clarify_again", "handoff", "handoff_queue_question", "offer_person",
    "low_confidence", "no_input", "goodbye", "anything_else", "ok_person", "language_handoff",
    "distress", "frustrated_offer", "not_found_retry", "tool_failed",
})  # fmt: skip


def load_pack(path: Path | None = None) -> BotPack:
    """Load a pack (the bundled default when `path` is None); BotPackError names file, path and problem."""
    if path is None:
        resource = files("dialogs.packs").joinpath(f"{DEFAULT_PACK}.yaml")
        name, text = f"dialogs/packs/{DEFAULT_PACK}.yaml", resource.read_text(encoding="utf-8")
    else:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BotPackError(name, "", f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
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
