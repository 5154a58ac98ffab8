"""The dialog manager: resolves simple cases, and steps aside as soon as it should.

Pure: events in, actions out, no clock, socket or audio. Each caller turn is read against the bot pack
(`understanding.read`), then the escalation policies in `triggers` are asked in order of priority. The
first that fires decides the turn; otherwise the intent's self-service step runs. Every decision is
emitted as an `Explain` action with the signals behind it, so a stored call explains itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dialogs import triggers
from dialogs.actions import Action, CallTool, EndCall, Explain, HandOff, Listen, Route, Say
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
from dialogs.package import EscalationReason, TranscriptTurn
from dialogs.state import CallState
from dialogs.summary import build_package, sending_what
from dialogs.understanding import Reading, read
from dialogs.wording import digit_by_digit, last_digits

CALLBACK_STATES = ("callback_number", "callback_digits", "callback_window")
WINDOW_WORDS = {"morning": "in the morning", "afternoon": "in the afternoon", "evening": "in the evening",
                "soon": "as soon as they can"}  # fmt: skip


def _window(reading: Reading | None, digits: str) -> str:
    if digits[:1] in ("1", "2", "3"):
        return ("morning", "afternoon", "evening")[int(digits[0]) - 1]
    words = reading.normalised.split() if reading is not None else []
    return next((w for w in ("morning", "afternoon", "evening") if w in words), "soon")


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "one minute" if minutes == 1 else f"{minutes} minutes"


@dataclass
class DialogManager:
    """One call's conversation, driven by a bot pack."""

    pack: BotPack
    state: CallState

    def handle(self, event: DialogEvent) -> list[Action]:
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
            return self._on_routed(event)
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
        return [*self._say("greeting", event.t_ms), Listen()]

    def _said(self, text: str, confidence: float, start_ms: int, end_ms: int) -> list[Action]:
        s = self.state
        if text:
            s.turns.append(
                TranscriptTurn(
                    speaker="caller", text=text, start_ms=start_ms, end_ms=end_ms, confidence=round(confidence, 3)
                )
            )
        s.no_input = 0
        reading = read(self.pack, text)
        if s.waiting == "route":
            return []  # routing answers in milliseconds; what was said is in the transcript
        if s.waiting in CALLBACK_STATES:
            return self._callback_answer(reading, reading.digits, end_ms)
        for kind, value in reading.facts.items():
            s.fact(kind, value)
        if reading.has("urgency"):
            s.urgency = "high"
        decision = triggers.first(self.pack, s, reading, confidence)
        if decision is not None:
            return self._escalate(decision, reading, end_ms)
        if confidence < self.pack.policy.low_asr_confidence or not text:
            return self._low_confidence(reading, confidence, end_ms)
        s.low_confidence_run = 0
        return self._continue(reading, end_ms)

    def _dtmf(self, digit: str, t_ms: int) -> list[Action]:
        s = self.state
        if s.waiting == "callback_window":
            return self._callback_answer(None, digit, t_ms)
        if s.waiting in ("callback_number", "callback_digits") and digit.isdigit():
            s.keyed_digits += digit
            if len(s.keyed_digits) < 10:
                return []
            digits, s.keyed_digits = s.keyed_digits, ""
            return self._callback_answer(None, digits, t_ms)
        if s.waiting and s.waiting.startswith("slot:") and digit.isdigit():
            s.keyed_digits += digit
            slot = self.pack.slots[s.waiting.removeprefix("slot:")]
            if len(s.keyed_digits) < slot.max_digits:
                return []
            digits, s.keyed_digits = s.keyed_digits, ""
            return self._fill_slot(s.waiting.removeprefix("slot:"), digits, t_ms)
        topics = self.pack.topics
        if s.waiting == "routing" and digit.isdigit() and 1 <= int(digit) <= len(topics):
            return self._to_topic(topics[int(digit) - 1].intent, "dtmf_zero", t_ms)
        if digit == "0":
            if s.offer_reason is not None:
                return self._handoff(s.offer_reason, self._queue(), t_ms, signals={"accepted": "dtmf 0"})
            reason = EscalationReason(
                category=self._person_category(), trigger="dtmf_zero", detail="The caller pressed zero for a person."
            )
            return self._person_request(reason, t_ms)
        return []

    def _silence(self, t_ms: int) -> list[Action]:
        s = self.state
        if s.waiting in CALLBACK_STATES:  # no answer: the caller ID and "as soon as they can"
            return self._callback_answer(None, "", t_ms)
        if s.waiting == "route":
            return []
        if s.waiting == "routing":  # no answer to the one routing question: the caller still wants a person
            s.waiting = None
            return self._to_topic(None, "explicit_request", t_ms)
        s.no_input += 1
        if s.no_input >= self.pack.policy.max_no_input:
            reason = EscalationReason(
                category="confidence_gap",
                trigger="no_input",
                detail=f"The caller said nothing through {s.no_input} prompts.",
            )
            return self._handoff(reason, self._queue(), t_ms)
        return [Explain("reprompt_no_input", {"no_input": s.no_input}), *self._say("no_input", t_ms), Listen()]

    # --- turns that do not hand off ---------------------------------------------------------------------------

    def _low_confidence(self, reading: Reading, confidence: float, t_ms: int) -> list[Action]:
        """Do not guess: ask again once, then offer a person (and the keypad), then hand off."""
        s = self.state
        s.low_confidence_run += 1
        run = s.low_confidence_run
        signals = {"asr_confidence": round(confidence, 3), "run": run}
        reason = EscalationReason(
            category="confidence_gap",
            trigger="low_asr_confidence",
            detail=f"Speech recognition was unsure {run} times running (last confidence {confidence:.2f}).",
        )
        if run > self.pack.policy.low_confidence_turns:
            return self._handoff(reason, self._queue(), t_ms, signals=signals)
        if run == self.pack.policy.low_confidence_turns:
            s.offer_reason = reason
            s.waiting = "offer_person"
            return [Explain("offer_person_low_confidence", signals), *self._say("low_confidence", t_ms), Listen()]
        if s.work.get("asked_again"):  # "Sorry, I didn't catch that" is said at most once a call
            return [Explain("ask_again_low_confidence", signals), *self._say("low_confidence", t_ms), Listen()]
        s.work["asked_again"] = True
        return [Explain("ask_again_low_confidence", signals), *self._say("low_confidence_first", t_ms), Listen()]

    def _continue(self, reading: Reading, t_ms: int) -> list[Action]:
        s = self.state
        waiting, s.waiting = s.waiting, None
        if waiting == "routing":
            return self._to_topic(self._routing_answer(reading), "explicit_request", t_ms)
        if waiting == "offer_person":
            if reading.has("affirm") and s.offer_reason is not None:
                return self._handoff(s.offer_reason, self._queue(), t_ms, signals={"accepted": "yes"})
            s.offer_reason = None
        if waiting == "did_it_help":
            if reading.has("deny") or reading.has("did_not_work"):
                return self._step_failed(t_ms)
            if reading.has("affirm") and not self._confident(reading):
                return self._anything_else(t_ms)
        if waiting == "anything_else" and not self._confident(reading):
            if reading.has("deny") or reading.has("goodbye"):
                return self._goodbye(t_ms)
            if reading.has("affirm"):
                s.waiting = "open"
                return [*self._say("what_else", t_ms), Listen()]
        if waiting and waiting.startswith("slot:") and not self._switching(reading):
            return self._slot_answer(waiting.removeprefix("slot:"), reading, t_ms)
        if waiting == "reschedule_pick" and not self._switching(reading):
            return self._reschedule_pick(reading, t_ms)
        name = self._intent_name(reading)
        if name is None:
            return self._not_understood(reading, t_ms)
        ambiguous = self._ambiguous(reading)
        if ambiguous is not None and s.clarifications < self.pack.policy.max_clarifications:
            s.clarifications += 1
            first, second = (self.pack.intent(n).description.lower() for n in ambiguous)
            s.work["ambiguous"] = ambiguous
            return [
                Explain("clarify_ambiguous", {"candidates": ",".join(ambiguous)}),
                *self._say("clarify_between", t_ms, first=first, second=second),
                Listen(),
            ]
        return self._serve(self.pack.intent(name), reading, t_ms)

    def _serve(self, intent: Intent, reading: Reading, t_ms: int) -> list[Action]:
        """Run the intent's one grounded step."""
        s = self.state
        if intent.name not in s.intents_seen:
            s.intents_seen.append(intent.name)
            s.work.setdefault("first_said", {})[intent.name] = reading.text
        s.intent = intent.name
        handling = intent.handling
        assert handling is not None  # escalating intents were decided by the triggers
        signals = {"intent": intent.name, "score": reading.best.score if reading.best else 0.0}
        if handling.kind == "end":
            return self._goodbye(t_ms)
        if handling.kind == "answer":
            s.steps_given.add(intent.name)
            s.tried(f"Answered from approved text ({intent.name})", "answer given")
            return [
                Explain("self_service_answer", signals),
                Say(handling.answer or "", f"answer:{intent.name}"),
                *self._anything_else(t_ms),
            ]
        if handling.kind == "reschedule":
            return [
                Explain("self_service_reschedule", signals),
                CallTool(self._call_id(), "find_appointment", {"phone": s.caller or ""}),
            ]
        for slot in intent.slots:
            if slot not in s.slots:
                spec = self.pack.slots[slot]
                digits = reading.digits
                if spec.kind == "digits" and spec.min_digits <= len(digits) <= spec.max_digits:
                    s.slots[slot] = digits
                    s.fact(slot, digits)
                    continue
                s.waiting = f"slot:{slot}"
                return [
                    Explain("ask_slot", {**signals, "slot": slot}),
                    Say(spec.prompt, f"slot:{slot}"),
                    Listen(tuple(spec.phrases)),
                ]
        return [Explain("call_tool", {**signals, "tool": handling.tool or ""}), self._call_tool(intent)]

    def _call_tool(self, intent: Intent) -> CallTool:
        s = self.state
        arguments: dict[str, object] = {"phone": s.caller or "", **s.slots}
        return CallTool(self._call_id(), intent.handling.tool or "", arguments)  # type: ignore[union-attr]

    def _slot_answer(self, slot: str, reading: Reading, t_ms: int) -> list[Action]:
        return self._fill_slot(slot, reading.digits, t_ms)

    def _fill_slot(self, slot: str, digits: str, t_ms: int) -> list[Action]:
        s = self.state
        spec = self.pack.slots[slot]
        size = spec.max_digits if spec.min_digits == spec.max_digits else 0
        conflict: tuple[str, str] | None = s.work.get(f"conflict:{slot}")
        two_numbers = size and len(digits) == 2 * size and digits[:size] != digits[size:]
        if two_numbers or (conflict and spec.min_digits <= len(digits) <= spec.max_digits and digits not in conflict):
            if conflict is not None:
                reason = EscalationReason(
                    category="confidence_gap",
                    trigger="contradiction",
                    detail=f"The caller gave conflicting {slot.replace('_', ' ')}s even after I asked which was right.",
                )
                return self._handoff(reason, self._queue(), t_ms)
            first, second = digits[:size], digits[size:]
            s.work[f"conflict:{slot}"] = (first, second)
            s.waiting = f"slot:{slot}"
            return [
                Explain("contradiction_confirm", {"slot": slot}),
                *self._say("slot_confirm_conflict", t_ms, first=digit_by_digit(first), second=digit_by_digit(second)),
                Listen(tuple(spec.phrases)),
            ]
        if spec.min_digits <= len(digits) <= spec.max_digits:
            s.slots[slot] = digits
            s.fact(slot, digits)
            intent = self.pack.intent(s.intent) if s.intent else None
            if intent is None:
                return self._not_understood(read(self.pack, ""), t_ms)
            return [Explain("slot_filled", {"slot": slot}), self._call_tool(intent)]
        s.failures[f"slot:{slot}"] += 1
        if s.failures[f"slot:{slot}"] >= self.pack.policy.max_failures:
            reason = EscalationReason(
                category="confidence_gap",
                trigger="repeated_failure",
                detail=f"I could not get a valid {slot.replace('_', ' ')} after asking twice.",
            )
            return self._handoff(reason, self._queue(), t_ms)
        s.waiting = f"slot:{slot}"
        return [
            Explain("reprompt_slot", {"slot": slot, "digits_heard": len(digits)}),
            Say(spec.reprompt or spec.prompt, f"slot_again:{slot}"),
            Listen(tuple(spec.phrases)),
        ]

    def _tool_result(self, event: ToolResult) -> list[Action]:
        s = self.state
        data = dict(event.data)
        t_ms = event.t_ms
        if not event.ok:
            s.tried(f"Tool {event.tool}", f"failed: {data.get('error', 'unknown error')}")
            reason = EscalationReason(
                category="capability_gap",
                trigger="tool_failed",
                detail=f"The {event.tool.replace('_', ' ')} system could not be reached.",
            )
            return [*self._say("tool_failed", t_ms), *self._handoff(reason, self._queue(), t_ms)]
        if event.tool == "find_appointment":
            return [
                Explain("appointment_lookup", {"found": bool(data.get("found"))}),
                *self._appointment_found(data, t_ms),
            ]
        if event.tool == "find_slots":
            slots = [str(x) for x in data.get("slots", [])][:2]
            s.work["slots"] = slots
            appointment = s.work.get("appointment", {})
            s.waiting = "reschedule_pick"
            return [
                Explain("offer_slots", {"offered": len(slots)}),
                *self._say(
                    "reschedule_found",
                    t_ms,
                    provider=str(appointment.get("provider", "")),
                    when=str(appointment.get("when", "")),
                    slot_one=slots[0],
                    slot_two=slots[1],
                ),
                Listen(),
            ]
        if event.tool == "reschedule_appointment":
            s.tried("Rescheduled the appointment", f"moved to {data.get('slot')}")
            s.fact("appointment", str(data.get("slot")), "tool")
            return [
                Explain("rescheduled", {"slot": str(data.get("slot"))}),
                *self._say("reschedule_done", t_ms, slot=str(data.get("slot"))),
                *self._anything_else(t_ms),
            ]
        intent = self.pack.intent(s.intent) if s.intent else None
        if intent is None or intent.handling is None:
            return []
        handling = intent.handling
        values = {k: str(v) for k, v in data.items()}
        values.update({f"{k}_spoken": digit_by_digit(v) for k, v in s.slots.items()})
        if not data.get("found", True):
            s.failures[intent.name] += 1
            s.tried(f"Tool {event.tool}", "not found")
            if intent.slots and s.failures[intent.name] < self.pack.policy.max_failures:
                slot = intent.slots[0]
                s.slots.pop(slot, None)
                s.waiting = f"slot:{slot}"
                return [
                    Explain("not_found_retry", {"tool": event.tool}),
                    Say(
                        (handling.not_found or "").format(**values) + " " + self.pack.prompt("not_found_retry"),
                        f"not_found:{intent.name}",
                    ),
                    Listen(tuple(self.pack.slots[slot].phrases)),
                ]
            reason = EscalationReason(
                category="capability_gap",
                trigger="not_found",
                detail=f"{event.tool.replace('_', ' ')} found nothing for the caller.",
            )
            return [
                Say((handling.not_found or "").format(**values), f"not_found:{intent.name}"),
                *self._handoff(reason, intent.queue, t_ms),
            ]
        if "total" in data:
            s.work["order_total"] = float(data["total"])
            s.fact("order_total", f"${float(data['total']):.2f}", "tool")
        if "status" in data:
            s.fact("order_status", str(data["status"]), "tool")
        s.steps_given.add(intent.name)
        found = (handling.found or "").format(**values)
        s.tried(f"Tool {event.tool}", found)
        actions: list[Action] = [Explain("tool_answer", {"tool": event.tool}), Say(found, f"found:{intent.name}")]
        if handling.offer_after:
            s.waiting = "did_it_help"
            return [*actions, Say(handling.offer_after, f"did_it_help:{intent.name}"), Listen()]
        return [*actions, *self._anything_else(t_ms)]

    def _appointment_found(self, data: dict[str, object], t_ms: int) -> list[Action]:
        s = self.state
        if not data.get("found"):
            s.tried("Looked up the caller's appointment by caller ID", "none found")
            reason = EscalationReason(
                category="capability_gap",
                trigger="not_found",
                detail="No appointment was found for the caller's number.",
            )
            return [*self._say("reschedule_none", t_ms), *self._handoff(reason, "appointments", t_ms)]
        s.work["appointment"] = data
        s.authentication = "caller_id_matched"
        s.fact("appointment", f"{data['when']} with {data['provider']} (id {data['id']})", "tool")
        if data.get("insurance"):
            s.fact("insurance_on_file", str(data["insurance"]), "tool")
        s.tried("Found the caller's appointment by caller ID", f"{data['when']} with {data['provider']}")
        return [CallTool(self._call_id(), "find_slots", {})]

    def _reschedule_pick(self, reading: Reading, t_ms: int) -> list[Action]:
        s = self.state
        slots: list[str] = s.work.get("slots", [])
        choice = None
        norm = reading.normalised
        words = norm.split()
        if any(w in words for w in ("second", "two", "later", "2", "last", "latter")):
            choice = slots[1]
        elif any(w in words for w in ("first", "earlier", "1", "former")) or words == ["one"]:
            choice = slots[0]
        else:
            choice = next((slot for slot in slots if slot.split(",")[0].lower() in norm), None)
        if choice is None:
            s.failures["reschedule_pick"] += 1
            if s.failures["reschedule_pick"] >= self.pack.policy.max_failures:
                reason = EscalationReason(
                    category="capability_gap",
                    trigger="repeated_failure",
                    detail="The caller did not take either offered slot.",
                )
                return self._handoff(reason, "appointments", t_ms)
            s.waiting = "reschedule_pick"
            return [*self._say("reschedule_pick_again", t_ms, slot_one=slots[0], slot_two=slots[1]), Listen()]
        return [
            Explain("reschedule_chosen", {"slot": choice}),
            CallTool(self._call_id(), "reschedule_appointment", {"phone": s.caller or "", "slot": choice}),
        ]

    def _not_understood(self, reading: Reading, t_ms: int) -> list[Action]:
        """Ask one clarifying question; after that, stop guessing and hand off."""
        s = self.state
        s.failures["understanding"] += 1
        signals = {
            "best": reading.best.intent if reading.best else "",
            "score": reading.best.score if reading.best else 0,
        }
        if s.clarifications < self.pack.policy.max_clarifications:
            s.clarifications += 1
            return [Explain("clarify", signals), *self._say("clarify", t_ms), Listen()]
        reason = EscalationReason(
            category="confidence_gap",
            trigger="repeated_failure",
            detail="I could not tell what the caller needed, even after a clarifying question.",
        )
        return self._handoff(reason, self._queue(), t_ms, signals=signals)

    def _step_failed(self, t_ms: int) -> list[Action]:
        s = self.state
        intent = s.intent or "unknown"
        s.failures[intent] += 1
        s.tried("Caller said the step did not help", "it did not work")
        reason = EscalationReason(
            category="capability_gap",
            trigger="repeated_failure",
            detail="The self-service step did not solve it, and I won't repeat it.",
        )
        return self._handoff(reason, self._queue(), t_ms)

    def _anything_else(self, t_ms: int) -> list[Action]:
        self.state.waiting = "anything_else"
        return [*self._say("anything_else", t_ms), Listen()]

    def _goodbye(self, t_ms: int) -> list[Action]:
        self.state.done = True
        return [
            Explain("end_resolved", {"intents": ",".join(self.state.intents_seen)}),
            *self._say("goodbye", t_ms),
            EndCall("resolved"),
        ]

    # --- handing off ---------------------------------------------------------------------------------------

    def _escalate(self, decision: triggers.Decision, reading: Reading, t_ms: int) -> list[Action]:
        s = self.state
        if decision.language:
            s.language = decision.language
        if decision.urgency == "high":
            s.urgency = "high"
        if decision.frustrated:
            s.frustrated = True
        if decision.intent and decision.intent not in s.intents_seen:
            s.intents_seen.append(decision.intent)
            s.work.setdefault("first_said", {})[decision.intent] = reading.text
            s.intent = decision.intent
        if decision.ask_routing:
            s.routing_asked = True
            s.waiting = "routing"
            s.work["routing_reason"] = decision.reason
            return [
                Explain("routing_question", decision.signals),
                *self._say("handoff_queue_question", t_ms),
                Listen(("account", "order", "appointment")),
            ]
        # What the caller hears first (911 advice, "thanks for telling me") belongs to the handoff: not cut short.
        before: list[Action] = (
            [Say(self.pack.prompt(decision.say_first), decision.say_first, interruptible=False)]
            if decision.say_first
            else []
        )
        if decision.prior_attempt:
            s.tried("Caller tried it before calling", decision.prior_attempt)
        queue = decision.queue or self._queue()
        return [*before, *self._handoff(decision.reason, queue, t_ms, signals=decision.signals)]

    def _person_request(self, reason: EscalationReason, t_ms: int) -> list[Action]:
        s = self.state
        if s.intent is None and not s.routing_asked:
            s.routing_asked = True
            s.waiting = "routing"
            s.work["routing_reason"] = reason
            return [
                Explain("routing_question", {"trigger": reason.trigger}),
                *self._say("handoff_queue_question", t_ms),
                Listen(("account", "order", "appointment")),
            ]
        return self._handoff(reason, self._queue(), t_ms)

    def _to_topic(self, intent_name: str | None, trigger: str, t_ms: int) -> list[Action]:
        s = self.state
        reason = s.work.get("routing_reason") or EscalationReason(
            category=self._person_category(), trigger=trigger, detail="The caller asked for a person."
        )
        queue = self.pack.intent(intent_name).queue if intent_name else self.pack.default_queue
        if intent_name:
            s.intent = intent_name
            if intent_name not in s.intents_seen:
                s.intents_seen.append(intent_name)
        return self._handoff(reason, queue, t_ms, signals={"routed_to": queue})

    def _handoff(
        self, reason: EscalationReason, queue: str, t_ms: int, signals: dict[str, object] | None = None
    ) -> list[Action]:
        """Decide to hand off: build the package, then ask routing where it can go before promising anything."""
        s = self.state
        package = build_package(self.pack, s, reason, queue)
        s.work["package"] = package
        s.waiting = "route"
        explain = Explain(
            f"handoff:{reason.trigger}",
            {
                "category": reason.category,
                "queue": queue,
                "urgency": s.urgency,
                "frustrated": s.frustrated,
                "failures": sum(s.failures.values()),
                "intent": s.intent or "",
                **(signals or {}),
            },
        )
        return [explain, Route(package)]

    def _on_routed(self, event: Routed) -> list[Action]:
        """Tell the caller which of the four they are getting, then hand off (a callback asks two things first)."""
        s = self.state
        package = s.work.get("package")
        if package is None or s.waiting != "route":
            return []
        s.work["routed"] = event
        team = event.queue.replace("_", " ")
        what = sending_what(s)
        explain = Explain(f"announce:{event.mode}", {"queue": event.queue, "expected_wait_s": event.expected_wait_s})
        if event.mode == "transfer":
            says = [Say(self.pack.prompt("handoff", team=team), f"handoff:{event.queue}", interruptible=False)]
            if event.expected_wait_s:
                says.append(Say(self.pack.prompt("handoff_wait", minutes=_minutes(event.expected_wait_s)),
                                "handoff_wait", interruptible=False))  # fmt: skip
            says.append(Say(self.pack.prompt("handoff_sending", what=what), "handoff_sending", interruptible=False))
            return self._hand_over(explain, says, "transfer")
        if event.mode == "voicemail":
            say = Say(self.pack.prompt("voicemail_intro", team=team, what=what), "voicemail_intro", interruptible=False)
            return self._hand_over(explain, [say], "voicemail")
        if event.mode == "ticket":
            say = Say(self.pack.prompt("ticket_intro", team=team, what=what), "ticket_intro", interruptible=False)
            return self._hand_over(explain, [say], "ticket")
        key = "callback_offer_closed" if not event.open else "callback_offer_busy"
        offer = Say(self.pack.prompt(key, team=team), key, interruptible=False)
        return [explain, offer, *self._ask_callback_number(t_ms=event.t_ms)]

    def _ask_callback_number(self, t_ms: int) -> list[Action]:
        s = self.state
        if s.caller:
            s.waiting = "callback_number"
            return [*self._say("callback_number", t_ms, last_digits=last_digits(s.caller)), Listen()]
        s.waiting = "callback_digits"
        return [*self._say("callback_number_other", t_ms), Listen()]

    def _callback_answer(self, reading: Reading | None, digits: str, t_ms: int) -> list[Action]:
        """The two callback questions: which number (caller ID by default), and when."""
        s = self.state
        if s.waiting in ("callback_number", "callback_digits"):
            number = None
            if len(digits) >= 10:
                number = "+" + digits if len(digits) > 10 else "+1" + digits
            elif s.waiting == "callback_number" and (reading is None or not reading.has("deny")):
                number = s.caller  # yes, or no answer at all: the number they are calling from
            elif s.work.get("asked_number_twice"):
                number = s.caller
            if number is None:
                s.work["asked_number_twice"] = True
                s.waiting = "callback_digits"
                return [*self._say("callback_number_other", t_ms), Listen()]
            s.work["callback_number"] = number
            s.waiting = "callback_window"
            return [*self._say("callback_window", t_ms), Listen(("morning", "afternoon", "evening"))]
        window = _window(reading, digits)
        routed: Routed = s.work["routed"]
        say = Say(
            self.pack.prompt("callback_confirm", window=WINDOW_WORDS[window], what=sending_what(s)),
            "callback_confirm",
            interruptible=False,
        )
        s.work["callback_window"] = window
        explain = Explain("callback_requested", {"queue": routed.queue, "window": window})
        return self._hand_over(explain, [say], "callback")

    def _hand_over(self, explain: Explain, says: list[Say], mode: str) -> list[Action]:
        s = self.state
        s.done = True
        s.waiting = None
        routed: Routed = s.work["routed"]
        package = s.work["package"]
        return [
            explain,
            *says,
            HandOff(
                package,
                mode=mode,
                routing=dict(routed.routing),
                callback_number=s.work.get("callback_number"),
                callback_window=s.work.get("callback_window"),
            ),
        ]

    # --- helpers --------------------------------------------------------------------------------------------

    def _say(self, key: str, t_ms: int, **values: str) -> list[Action]:
        self.state.prompts += 1
        return [Say(self.pack.prompt(key, **values), key)]

    def _queue(self) -> str:
        s = self.state
        return self.pack.intent(s.intent).queue if s.intent else self.pack.default_queue

    def _person_category(self) -> str:
        return "capability_gap"

    def _confident(self, reading: Reading) -> bool:
        best = reading.best
        return best is not None and best.score >= 0.6 and best.intent != "goodbye"

    def _switching(self, reading: Reading) -> bool:
        best = reading.best
        return best is not None and best.score >= 0.6 and not reading.digits

    def _intent_name(self, reading: Reading) -> str | None:
        best = reading.best
        if best is None or best.score < self.pack.policy.min_intent_score:
            return self.pack.topic_in(reading.normalised)
        return best.intent

    def _routing_answer(self, reading: Reading) -> str | None:
        """The answer to "account, order, or appointment?": those words first, then any clear intent."""
        return self.pack.topic_in(reading.normalised) or self._intent_name(reading)

    def _ambiguous(self, reading: Reading) -> tuple[str, str] | None:
        if len(reading.scores) < 2:
            return None
        first, second = reading.scores[0], reading.scores[1]
        if first.score >= 0.9 or second.score < self.pack.policy.min_intent_score:
            return None
        if first.score - second.score > 0.1:
            return None
        if self.pack.intent(first.intent).area == self.pack.intent(second.intent).area:
            return None
        return first.intent, second.intent

    def _call_id(self) -> str:
        self.state.work["tool_calls"] = self.state.work.get("tool_calls", 0) + 1
        return f"t{self.state.work['tool_calls']}"


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
