"""The dialog manager: resolves simple cases, and steps aside as soon as it should.

Pure: events in, actions out, no clock, socket or audio. Each caller turn is read against the bot pack
(`understanding.read`), then the escalation policies in `triggers` are asked in order of priority. The
first that fires decides the turn; otherwise the intent's self-service step runs (`flows`). Once a handoff
is decided, `handover` asks the router and tells the caller what happens next. Every decision is emitted as
an `Explain` action with the signals behind it, so a stored call explains itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dialogs import flows, handover, triggers
from dialogs.actions import Action, EndCall, Explain, Listen, Say
from dialogs.events import (
    CallerHungUp,
    CallerSaid,
    CallerUnintelligible,
    CallStarted,
    DialogEvent,
    DtmfPressed,
    Routed,
    SilenceTimeout,
    ToolResult,
)
from dialogs.pack import BotPack, Intent, load_pack
from dialogs.package import USER_DISTRESS, Category, EscalationReason, HandoffPackage, TranscriptTurn
from dialogs.state import CallState, Waiting
from dialogs.summary import fallback_package
from dialogs.text import normalise
from dialogs.understanding import Reading, read

PERSON_REQUEST = USER_DISTRESS  # a direct request for a person, by the article's taxonomy
CLOSING_SPARE_WORDS = 2  # a closing may carry a couple of other words ("nope, I'm good, cheers"), not a sentence


@dataclass
class DialogManager:
    """One call's conversation, driven by a bot pack."""

    pack: BotPack
    state: CallState

    def handle(self, event: DialogEvent) -> list[Action]:
        actions = self._handle(event)
        phrases = self.pack.recognition.phrases
        if not phrases:
            return actions
        # the pack listens with a grammar: every question is heard through its phrases, and the step's own
        return [
            Listen(tuple(dict.fromkeys([*a.phrases, *phrases])), a.timeout_ms) if isinstance(a, Listen) else a
            for a in actions
        ]

    def _handle(self, event: DialogEvent) -> list[Action]:
        if self.state.done:
            return []
        if isinstance(event, CallStarted):
            return self._started(event)
        if isinstance(event, CallerSaid):
            return self._said(event.text, event.confidence, event.start_ms, event.end_ms)
        if isinstance(event, CallerUnintelligible):
            return self._said("", 0.0, event.start_ms, event.end_ms)
        if isinstance(event, DtmfPressed):
            return self._dtmf(event.digit, event.t_ms)
        if isinstance(event, SilenceTimeout):
            return self._silence(event.t_ms)
        if isinstance(event, ToolResult):
            return self._tool_result(event)
        if isinstance(event, Routed):
            return handover.routed(self.pack, self.state, event)
        if isinstance(event, CallerHungUp):
            self.state.done = True
        return []

    # --- events -----------------------------------------------------------------------------------------

    def _started(self, event: CallStarted) -> list[Action]:
        s = self.state
        s.caller = event.caller
        s.parameters = dict(event.parameters)
        if event.caller:
            s.fact("phone", event.caller, "caller_id")
        return [*self._say("greeting"), Listen()]

    def _said(self, text: str, confidence: float, start_ms: int, end_ms: int) -> list[Action]:
        s = self.state
        if text:
            turn = TranscriptTurn(
                speaker="caller", text=text, start_ms=start_ms, end_ms=end_ms, confidence=round(confidence, 3)
            )
            s.turns.append(turn)
        s.no_input = 0
        reading = read(self.pack, text)
        if s.waiting is Waiting.ROUTE:
            return []  # routing answers in milliseconds; what was said is in the transcript
        if s.waiting is not None and s.waiting.about_a_callback:
            return handover.callback_answer(self.pack, s, reading, reading.digits)
        for kind, value in reading.facts.items():
            s.fact(kind, value)
        if reading.has("urgency"):
            s.urgency = "high"
        # The answer to the routing question names a team ("an account"): a person is coming already, so only
        # an emergency, or a risk that has its own team, changes where the call goes.
        policies = triggers.ROUTING_ANSWER if s.waiting is Waiting.ROUTING_QUESTION else triggers.POLICIES
        verdict = triggers.first(self.pack, s, reading, confidence, policies)
        if verdict is not None:
            return self._escalate(verdict, reading)
        if reading.has("frustration") and not s.frustrated:
            s.frustrated = True  # from now on: short prompts that offer a person, and no step said twice
        if confidence < self.pack.policy.low_asr_confidence or not text:
            return self._low_confidence(confidence)
        s.low_confidence_run = 0
        return self._continue(reading, end_ms)

    def _dtmf(self, digit: str, t_ms: int) -> list[Action]:
        s = self.state
        if s.waiting is not None and s.waiting.about_a_callback:
            return handover.callback_keys(self.pack, s, digit)
        if s.waiting is Waiting.SLOT and s.asked_slot is not None and digit.isdigit():
            s.keyed_digits += digit
            if len(s.keyed_digits) < self.pack.slots[s.asked_slot].max_digits:
                return []
            digits, s.keyed_digits = s.keyed_digits, ""
            return flows.fill_slot(self.pack, s, s.asked_slot, digits, t_ms, self._queue())
        topics = self.pack.topics
        if s.waiting is Waiting.ROUTING_QUESTION and digit.isdigit() and 1 <= int(digit) <= len(topics):
            self.state.topic_only = topics[int(digit) - 1].word
            return self._to_topic(topics[int(digit) - 1].intent, "dtmf_zero")
        if digit == "0":
            if s.offer_reason is not None:
                return handover.decide(self.pack, s, s.offer_reason, self._queue(), {"accepted": "dtmf 0"})
            reason = EscalationReason(
                category=PERSON_REQUEST, trigger="dtmf_zero", detail=self.pack.reason("dtmf_zero")
            )
            return self._person_request(reason)
        return []

    def _silence(self, t_ms: int) -> list[Action]:
        s = self.state
        if s.waiting is not None and s.waiting.about_a_callback:  # no answer: the caller ID, and "soon"
            return handover.callback_answer(self.pack, s, None, "")
        if s.waiting is Waiting.ROUTE:
            return []
        if s.waiting is Waiting.ROUTING_QUESTION:  # no answer to the one routing question: still a person
            s.waiting = None
            return self._to_topic(None, "explicit_request")
        s.no_input += 1
        if s.no_input >= self.pack.policy.max_no_input:
            detail = self.pack.reason("no_input", count=s.no_input)
            reason = EscalationReason(category="confidence_gap", trigger="no_input", detail=detail)
            return handover.decide(self.pack, s, reason, self._queue())
        return [Explain("reprompt_no_input", {"no_input": s.no_input}), *self._say("no_input"), Listen()]

    def _tool_result(self, event: ToolResult) -> list[Action]:
        s = self.state
        intent = self.pack.find_intent(s.intent) if s.intent else None
        if not event.ok:
            return flows.tool_failed(self.pack, s, event, self._queue())
        if intent is None or intent.handling is None:
            return []
        if intent.handling.kind == "booking":
            return flows.booking_result(self.pack, s, intent, event)
        return flows.tool_answer(self.pack, s, intent, event)

    # --- turns that do not hand off ---------------------------------------------------------------------------

    def _low_confidence(self, confidence: float) -> list[Action]:
        """Do not guess: ask again once, then offer a person (and the keypad), then hand off."""
        s = self.state
        s.low_confidence_run += 1
        run = s.low_confidence_run
        signals = {"asr_confidence": round(confidence, 3), "run": run}
        detail = self.pack.reason("low_asr_confidence", count=run, confidence=confidence)
        reason = EscalationReason(category="confidence_gap", trigger="low_asr_confidence", detail=detail)
        if run > self.pack.policy.low_confidence_turns:
            return handover.decide(self.pack, s, reason, self._queue(), signals)
        if run == self.pack.policy.low_confidence_turns:
            s.offer_reason = reason
            s.ask(Waiting.OFFER_PERSON)
            return [Explain("offer_person_low_confidence", signals), *self._say("low_confidence"), Listen()]
        if s.apologised:  # "Sorry, I didn't catch that" is said at most once a call
            return [Explain("ask_again_low_confidence", signals), *self._say("low_confidence"), Listen()]
        s.apologised = True
        return [Explain("ask_again_low_confidence", signals), *self._say("low_confidence_first"), Listen()]

    def _continue(self, reading: Reading, t_ms: int) -> list[Action]:
        s = self.state
        waiting, s.waiting = s.waiting, None
        if waiting is Waiting.ROUTING_QUESTION:
            return self._to_topic(self._routing_answer(reading), "explicit_request")
        if waiting is Waiting.OFFER_PERSON:
            if reading.has("affirm") and s.offer_reason is not None:
                return handover.decide(self.pack, s, s.offer_reason, self._queue(), {"accepted": "yes"})
            s.offer_reason = None
        if waiting is Waiting.DID_IT_HELP:
            if reading.has("deny") or reading.has("did_not_work"):
                return self._step_failed()
            if reading.has("affirm") and not self._confident(reading):
                return flows.anything_else(self.pack, s)
        if waiting is Waiting.ANYTHING_ELSE:
            if self._clear_closing(reading):
                return self._goodbye()
            if reading.has("affirm") and self._nothing_more(reading):
                s.ask(Waiting.OPEN)
                return [*self._say("what_else"), Listen()]
        answered = reading.has("affirm") or reading.has("deny") or bool(reading.digits)
        if waiting is Waiting.SLOT_CONFIRM and (answered or not self._switching(reading)):
            return flows.slot_confirmed(self.pack, s, reading, t_ms, self._queue())
        if waiting is Waiting.SLOT and s.asked_slot is not None and not self._switching(reading):
            return flows.fill_slot(self.pack, s, s.asked_slot, reading.digits, t_ms, self._queue())
        intent_now = self.pack.find_intent(s.intent) if s.intent else None
        if waiting is Waiting.BOOKING_PICK and intent_now is not None and not self._switching(reading):
            return flows.booking_pick(self.pack, s, intent_now, reading)
        name = self._routing_answer(reading) if waiting is Waiting.CLARIFY else self._intent_name(reading)
        if name is None:
            return self._not_understood(reading)
        ambiguous = self._ambiguous(reading)
        if ambiguous is not None and s.clarifications < self.pack.policy.max_clarifications:
            s.clarifications += 1
            first, second = (self.pack.intent(n).description.lower() for n in ambiguous)
            return [
                Explain("clarify_ambiguous", {"candidates": ",".join(ambiguous)}),
                *self._say("clarify_between", first=first, second=second),
                Listen(),
            ]
        return self._serve(self.pack.intent(name), reading)

    def _serve(self, intent: Intent, reading: Reading) -> list[Action]:
        """Run the intent's one grounded step (an intent that must go to a person goes there)."""
        s = self.state
        if intent.name not in s.intents_seen:
            s.intents_seen.append(intent.name)
            s.first_said[intent.name] = reading.text
        s.intent = intent.name
        handling = intent.handling
        signals = {"intent": intent.name, "score": reading.best.score if reading.best else 0.0}
        if handling is None:  # an escalating intent heard too faintly for its rule: still not self-served
            escalate = intent.escalate
            category: Category = escalate.category if escalate else "capability_gap"
            trigger = escalate.trigger if escalate else "no_grounded_answer"
            detail = self.pack.reason("risk", intent=intent.description)
            reason = EscalationReason(category=category, trigger=trigger, detail=detail)
            return handover.decide(self.pack, s, reason, intent.queue, signals)
        if handling.kind == "end":
            return self._goodbye()
        if s.frustrated and intent.name in s.steps_given:  # never the same suggestion twice to a frustrated caller
            return self._step_failed()
        if handling.kind == "answer":
            s.steps_given.add(intent.name)
            s.tried(self.pack.attempt("answered", intent=intent.name), self.pack.attempt("answer_given"))
            return [
                Explain("self_service_answer", signals),
                Say(handling.answer or "", f"answer:{intent.name}"),
                *flows.anything_else(self.pack, s),
            ]
        if handling.kind == "booking":
            return flows.booking_start(self.pack, s, intent, signals)
        for slot in intent.slots:
            if slot not in s.slots:
                spec = self.pack.slots[slot]
                digits = reading.digits
                if spec.kind == "digits" and spec.min_digits <= len(digits) <= spec.max_digits:
                    s.slots[slot] = digits
                    s.fact(slot, digits)
                    continue
                if spec.kind == "digits" and flows.plausible_length(spec.min_digits, spec.max_digits, len(digits)):
                    return flows.confirm_slot(self.pack, s, slot, digits)
                return flows.ask_slot(self.pack, s, slot, signals)
        return [Explain("call_tool", {**signals, "tool": handling.tool or ""}), flows.call_tool(s, intent)]

    def _not_understood(self, reading: Reading) -> list[Action]:
        """Ask one clarifying question; after that, stop guessing and hand off."""
        s = self.state
        s.failures["understanding"] += 1
        best = reading.best
        signals = {"best": best.intent if best else "", "score": best.score if best else 0}
        if s.clarifications < self.pack.policy.max_clarifications:
            s.clarifications += 1
            s.ask(Waiting.CLARIFY)
            return [Explain("clarify", signals), *self._say("clarify"), Listen()]
        detail = self.pack.reason("not_understood")
        reason = EscalationReason(category="confidence_gap", trigger="repeated_failure", detail=detail)
        return handover.decide(self.pack, s, reason, self._queue(), signals)

    def _step_failed(self) -> list[Action]:
        s = self.state
        s.failures[s.intent or "unknown"] += 1
        s.tried(self.pack.attempt("step_failed"), self.pack.attempt("step_failed_result"))
        detail = self.pack.reason("step_failed")
        reason = EscalationReason(category=USER_DISTRESS, trigger="repeated_failure", detail=detail)
        return handover.decide(self.pack, s, reason, self._queue())

    def _goodbye(self) -> list[Action]:
        self.state.done = True
        return [
            Explain("end_resolved", {"intents": ",".join(self.state.intents_seen)}),
            *self._say("goodbye"),
            EndCall("resolved"),
        ]

    # --- handing off ---------------------------------------------------------------------------------------

    def _escalate(self, verdict: triggers.PolicyVerdict, reading: Reading) -> list[Action]:
        s = self.state
        if verdict.language:
            s.language = verdict.language
        if verdict.urgency == "high":
            s.urgency = "high"
        if verdict.frustrated:
            s.frustrated = True
        if verdict.intent and verdict.intent not in s.intents_seen:
            s.intents_seen.append(verdict.intent)
            s.first_said[verdict.intent] = reading.text
            s.intent = verdict.intent
        if verdict.ask_routing:
            return self._routing_question(verdict.reason, verdict.signals)
        # What the caller hears first (911 advice, "thanks for telling me") belongs to the handoff: not cut short.
        before: list[Action] = []
        if verdict.say_first:
            text = self.pack.prompts.get(verdict.say_first, verdict.say_first)
            prompt_id = verdict.say_first if verdict.say_first in self.pack.prompts else "say_first"
            before = [Say(text, prompt_id, interruptible=False)]
        if verdict.prior_attempt:
            s.tried(self.pack.attempt("prior_attempt"), verdict.prior_attempt)
        queue = verdict.queue or self._queue()
        signals = {"policy": verdict.policy, **verdict.signals}
        return [*before, *handover.decide(self.pack, s, verdict.reason, queue, signals)]

    def _routing_question(self, reason: EscalationReason, signals: dict[str, object]) -> list[Action]:
        s = self.state
        s.routing_asked = True
        s.routing_reason = reason
        s.ask(Waiting.ROUTING_QUESTION)
        topics = tuple(t.word for t in self.pack.topics)
        return [Explain("routing_question", signals), *self._say("handoff_queue_question"), Listen(topics)]

    def _person_request(self, reason: EscalationReason) -> list[Action]:
        s = self.state
        if s.intent is None and not s.routing_asked:
            return self._routing_question(reason, {"trigger": reason.trigger})
        return handover.decide(self.pack, s, reason, self._queue())

    def _to_topic(self, intent_name: str | None, trigger: str) -> list[Action]:
        s = self.state
        detail = self.pack.reason("explicit_request", marker=trigger.replace("_", " "))
        reason = s.routing_reason or EscalationReason(category=PERSON_REQUEST, trigger=trigger, detail=detail)
        queue = self.pack.intent(intent_name).queue if intent_name else self.pack.default_queue
        if intent_name:
            s.intent = intent_name
            if intent_name not in s.intents_seen:
                s.intents_seen.append(intent_name)
        return handover.decide(self.pack, s, reason, queue, {"routed_to": queue})

    # --- helpers --------------------------------------------------------------------------------------------

    def _say(self, key: str, **values: str) -> list[Action]:
        self.state.prompts += 1
        text, prompt_id = self.pack.spoken(key, self.pack.prompt(key, **values), self.state.frustrated, **values)
        return [Say(text, prompt_id)]

    def _queue(self) -> str:
        s = self.state
        intent = self.pack.find_intent(s.intent) if s.intent else None
        return intent.queue if intent is not None else self.pack.default_queue

    def _confident(self, reading: Reading) -> bool:
        best = reading.best
        if best is None or best.score < self.pack.policy.strong_intent_score:
            return False
        handling = self.pack.intent(best.intent).handling
        return handling is None or handling.kind != "end"

    def _switching(self, reading: Reading) -> bool:
        """An answer with no digits that is about another topic: the caller moved on (read it as a new turn)."""
        return not reading.digits and reading.topic is not None and reading.topic != self.state.intent

    def _clear_closing(self, reading: Reading) -> bool:
        """Only a clear closing ends a call: a goodbye, a "no" or a "that's all", and nothing else of substance.
        "No, actually my last order came broken" is a new problem, not a goodbye."""
        if not (reading.has("closing") or reading.has("goodbye") or reading.has("deny")):
            return False
        ending = {i.name for i in self.pack.intents if i.handling is not None and i.handling.kind == "end"}
        return self._nothing_more(reading, allowed=ending)

    def _nothing_more(self, reading: Reading, allowed: frozenset[str] | set[str] = frozenset()) -> bool:
        """Nothing in the reading but closing and small words: no topic (but `allowed`), complaint or request."""
        if reading.topic is not None and reading.topic not in allowed:
            return False
        if any(reading.has(m) for m in ("person_request", "distress", "frustration", "did_not_work", "urgency")):
            return False
        said = set(reading.normalised.split())
        small = set(self.pack.words.stop)
        for name in ("closing", "goodbye", "deny", "affirm"):
            for phrase in reading.markers.get(name, []):
                small.update(normalise(phrase).split())
        return len(said - small) <= CLOSING_SPARE_WORDS

    def _intent_name(self, reading: Reading) -> str | None:
        best = reading.best
        if best is not None and best.score >= self.pack.policy.min_intent_score:
            return best.intent
        if best is not None and self._leading_risk(reading):
            return best.intent  # unsure, but leaning to something a person must handle: err towards a person
        return self.pack.topic_in(reading.normalised)

    def _leading_risk(self, reading: Reading) -> bool:
        """The classifier's first guess is an intent that always goes to a person, at least `risk_floor` sure."""
        top = reading.guesses[0] if reading.guesses else None
        if top is None or not top.is_intent or top.probability < self.pack.policy.risk_floor:
            return False
        return self.pack.intent(top.label).escalate is not None

    def _routing_answer(self, reading: Reading) -> str | None:
        """The answer to "account, order, or appointment?": a need said clearly, else those words, else any
        intent. A bare topic word ("it's about an order") is kept as such: the summary claims no more."""
        topic = next((t for t in self.pack.topics if t.intent == self.pack.topic_in(reading.normalised)), None)
        if topic is not None and self._only_names(reading, topic.word):
            self.state.topic_only = topic.word
            return topic.intent
        best = reading.best
        if best is not None and best.score >= self.pack.policy.strong_intent_score:
            return best.intent
        return topic.intent if topic is not None else self._intent_name(reading)

    def _only_names(self, reading: Reading, word: str) -> bool:
        """ "It's about an order", "orders": the sentence says the topic word and nothing of substance besides."""
        small = set(self.pack.words.stop) | set(self.pack.words.topic_fillers) | {word, f"{word}s"}
        return not [w for w in reading.normalised.split() if w not in small]

    def _ambiguous(self, reading: Reading) -> tuple[str, str] | None:
        policy = self.pack.policy
        if len(reading.scores) < 2:
            return None
        first, second = reading.scores[0], reading.scores[1]
        if first.score >= policy.clear_intent_score or second.score < policy.min_intent_score:
            return None
        if self.pack.intent(first.intent).escalate is not None:
            return None  # leaning to something a person must handle: they will ask, not the bot
        if first.score - second.score > policy.ambiguity_margin:
            return None
        if self.pack.intent(first.intent).area == self.pack.intent(second.intent).area:
            return None
        return first.intent, second.intent


@dataclass
class DialogManagerFactory:
    """Makes a `DialogManager` per call from one loaded pack."""

    pack: BotPack = field(default_factory=load_pack)

    def fixed_prompts(self) -> Iterable[str]:
        """Every prompt known before a call: pack prompts without blanks, answers, slot questions, handoffs."""
        for key, text in self.pack.prompts.items():
            if "{" not in text:
                yield text
            elif key == "handoff":
                for queue in self.pack.queues:
                    yield self.pack.prompt("handoff", team=queue.name.replace("_", " "))
        yield from (text for text in self.pack.frustrated_prompts.values() if "{" not in text)
        for intent in self.pack.intents:
            if intent.handling and intent.handling.answer:
                yield intent.handling.answer
            if intent.handling and intent.handling.offer_after:
                yield intent.handling.offer_after
            if intent.escalate and intent.escalate.say:
                yield intent.escalate.say
        for slot in self.pack.slots.values():
            yield slot.prompt
            if slot.reprompt:
                yield slot.reprompt

    def new_dialog(self, call_sid: str) -> DialogManager:
        return DialogManager(self.pack, CallState(call_sid=call_sid))

    def fallback(
        self, call_sid: str, caller: str | None, transcript: tuple[TranscriptTurn, ...], reason: EscalationReason
    ) -> HandoffPackage:
        """The package for a call whose conversation broke: what the caller said, for the default queue."""
        return fallback_package(self.pack, call_sid, caller=caller, transcript=transcript, reason=reason)

    def fallback_reason(
        self, trigger: str, category: Category = "workflow_exception", words: str | None = None, **details: object
    ) -> EscalationReason:
        """Why a broken call was handed on, in the pack's words (its `reasons[words or trigger]`)."""
        detail = self.pack.reason(words or trigger, **details)
        return EscalationReason(category=category, trigger=trigger, detail=detail)
