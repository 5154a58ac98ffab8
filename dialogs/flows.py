"""Self-service steps that span turns: filling an intent's slots, reading a tool's answer, and the booking flow.

Each function takes the pack, the call's state and what just happened, and returns the actions for it; a
step that cannot finish hands off through `handover.decide`. Tool names, data fields and every word come
from the pack.
"""

from __future__ import annotations

from dialogs import handover
from dialogs.actions import Action, CallTool, Explain, Listen, Say
from dialogs.events import ToolResult
from dialogs.pack import BotPack, Handling, Intent
from dialogs.package import EscalationReason
from dialogs.state import Booking, CallState, Waiting
from dialogs.understanding import Reading
from dialogs.wording import digit_by_digit


def ask_slot(pack: BotPack, state: CallState, slot: str, signals: dict[str, object]) -> list[Action]:
    spec = pack.slots[slot]
    state.ask(Waiting.SLOT, slot)
    text, prompt_id = pack.spoken(f"slot:{slot}", spec.prompt, state.frustrated)
    return [Explain("ask_slot", {**signals, "slot": slot}), Say(text, prompt_id), Listen(tuple(spec.phrases))]


def call_tool(state: CallState, intent: Intent) -> CallTool:
    """The intent's tool, with the caller's number and the slots collected."""
    arguments: dict[str, object] = {"phone": state.caller or "", **state.slots}
    tool = intent.handling.tool if intent.handling and intent.handling.tool else ""
    return CallTool(state.next_call_id(), tool, arguments)


def fill_slot(pack: BotPack, state: CallState, slot: str, digits: str, t_ms: int, queue: str) -> list[Action]:
    """A slot answer: take a valid number and run the tool; confirm two different numbers; ask again once."""
    spec = pack.slots[slot]
    size = spec.max_digits if spec.min_digits == spec.max_digits else 0
    conflict = state.slot_conflicts.get(slot)
    two_numbers = size and len(digits) == 2 * size and digits[:size] != digits[size:]
    in_range = spec.min_digits <= len(digits) <= spec.max_digits
    if two_numbers or (conflict and in_range and digits not in conflict):
        if conflict is not None:
            detail = pack.reason("contradiction", slot=slot.replace("_", " "))
            reason = EscalationReason(category="confidence_gap", trigger="contradiction", detail=detail)
            return handover.decide(pack, state, reason, queue)
        first, second = digits[:size], digits[size:]
        state.slot_conflicts[slot] = (first, second)
        state.ask(Waiting.SLOT, slot)
        state.prompts += 1
        text = pack.prompt("slot_confirm_conflict", first=digit_by_digit(first), second=digit_by_digit(second))
        return [
            Explain("contradiction_confirm", {"slot": slot}),
            Say(text, "slot_confirm_conflict"),
            Listen(tuple(spec.phrases)),
        ]
    if in_range:
        return take_slot(pack, state, slot, digits)
    if spec.kind == "digits" and plausible_length(spec.min_digits, spec.max_digits, len(digits)):
        return confirm_slot(pack, state, slot, digits)
    state.failures[f"slot:{slot}"] += 1
    if state.failures[f"slot:{slot}"] >= pack.policy.max_failures:
        detail = pack.reason("slot_failed", slot=slot.replace("_", " "))
        reason = EscalationReason(category="confidence_gap", trigger="repeated_failure", detail=detail)
        return handover.decide(pack, state, reason, queue)
    state.ask(Waiting.SLOT, slot)
    return [
        Explain("reprompt_slot", {"slot": slot, "digits_heard": len(digits)}),
        Say(spec.reprompt or spec.prompt, f"slot_again:{slot}"),
        Listen(tuple(spec.phrases)),
    ]


def plausible_length(low: int, high: int, length: int) -> bool:
    """A number of another length than the slot expects, but near enough to be the caller's real one (a
    five-digit order number from an older system, a number with a digit too many): confirm it, never refuse."""
    return length > 0 and length not in range(low, high + 1) and max(3, low - 2) <= length <= high + 2


def take_slot(pack: BotPack, state: CallState, slot: str, digits: str) -> list[Action]:
    """The slot is filled: run the intent's tool with it."""
    state.slots[slot] = digits
    state.fact(slot, digits)
    state.slot_candidate = None
    intent = pack.find_intent(state.intent) if state.intent else None
    if intent is None:
        return []
    return [Explain("slot_filled", {"slot": slot}), call_tool(state, intent)]


def confirm_slot(pack: BotPack, state: CallState, slot: str, digits: str) -> list[Action]:
    """Read a number of another length back, and ask whether it is the one."""
    state.slot_candidate = digits
    state.ask(Waiting.SLOT_CONFIRM, slot)
    state.prompts += 1
    text = pack.prompt("slot_confirm_length", digits=digit_by_digit(digits), count=str(len(digits)))
    return [
        Explain("confirm_slot_length", {"slot": slot, "digits_heard": len(digits)}),
        Say(text, "slot_confirm_length"),
        Listen((*pack.markers.affirm, *pack.markers.deny, *pack.slots[slot].phrases)),
    ]


def slot_confirmed(pack: BotPack, state: CallState, reading: Reading, t_ms: int, queue: str) -> list[Action]:
    """The answer to "is that the number?": yes takes it; another number is taken as the answer; no asks again."""
    slot, candidate = state.asked_slot, state.slot_candidate
    if slot is None or candidate is None:
        return []
    if reading.digits and reading.digits != candidate:
        state.slot_candidate = None
        return fill_slot(pack, state, slot, reading.digits, t_ms, queue)
    if reading.has("affirm") and not reading.has("deny"):
        return take_slot(pack, state, slot, candidate)
    state.slot_candidate = None
    state.failures[f"slot:{slot}"] += 1
    if state.failures[f"slot:{slot}"] >= pack.policy.max_failures:
        detail = pack.reason("slot_failed", slot=slot.replace("_", " "))
        reason = EscalationReason(category="confidence_gap", trigger="repeated_failure", detail=detail)
        return handover.decide(pack, state, reason, queue)
    spec = pack.slots[slot]
    state.ask(Waiting.SLOT, slot)
    return [
        Explain("reprompt_slot", {"slot": slot, "confirmed": False}),
        Say(spec.reprompt or spec.prompt, f"slot_again:{slot}"),
        Listen(tuple(spec.phrases)),
    ]


def tool_failed(pack: BotPack, state: CallState, event: ToolResult, queue: str) -> list[Action]:
    error = str(event.data.get("error", "unknown error"))
    state.tried(pack.attempt("tool", tool=event.tool), pack.attempt("tool_failed", error=error))
    detail = pack.reason("tool_failed", tool=event.tool.replace("_", " "))
    reason = EscalationReason(category="capability_gap", trigger="tool_failed", detail=detail)
    state.prompts += 1
    return [Say(pack.prompt("tool_failed"), "tool_failed"), *handover.decide(pack, state, reason, queue)]


def tool_answer(pack: BotPack, state: CallState, intent: Intent, event: ToolResult) -> list[Action]:
    """A `tool` intent's answer: read the found template, or not found (ask again once, then hand off)."""
    handling = intent.handling
    if handling is None:
        return []
    data = dict(event.data)
    values = {k: str(v) for k, v in data.items()}
    values.update({f"{k}_spoken": digit_by_digit(v) for k, v in state.slots.items()})
    if not data.get("found", True):
        return _not_found(pack, state, intent, handling, event, values)
    _take_facts(state, handling, data)
    tool = pack.tools.get(event.tool)
    if tool is not None and tool.identifies_caller and state.caller:
        state.authentication = "caller_id_matched"
    state.steps_given.add(intent.name)
    found = _fill(handling.found or "", values)
    state.tried(pack.attempt("tool", tool=event.tool), found)
    actions: list[Action] = [Explain("tool_answer", {"tool": event.tool}), Say(found, f"found:{intent.name}")]
    if handling.offer_after:
        state.ask(Waiting.DID_IT_HELP)
        return [*actions, Say(handling.offer_after, f"did_it_help:{intent.name}"), Listen()]
    return [*actions, *anything_else(pack, state)]


def _not_found(
    pack: BotPack, state: CallState, intent: Intent, handling: Handling, event: ToolResult, values: dict[str, str]
) -> list[Action]:
    state.failures[intent.name] += 1
    state.tried(pack.attempt("tool", tool=event.tool), pack.attempt("tool_not_found"))
    not_found = _fill(handling.not_found or "", values)
    if intent.slots and state.failures[intent.name] < pack.policy.max_failures:
        slot = intent.slots[0]
        state.slots.pop(slot, None)
        state.ask(Waiting.SLOT, slot)
        return [
            Explain("not_found_retry", {"tool": event.tool}),
            Say(f"{not_found} {pack.prompt('not_found_retry')}".strip(), f"not_found:{intent.name}"),
            Listen(tuple(pack.slots[slot].phrases)),
        ]
    detail = pack.reason("not_found", tool=event.tool.replace("_", " "))
    reason = EscalationReason(category="capability_gap", trigger="not_found", detail=detail)
    return [Say(not_found, f"not_found:{intent.name}"), *handover.decide(pack, state, reason, intent.queue)]


def _take_facts(state: CallState, handling: Handling, data: dict[str, object]) -> None:
    """The tool's data as key facts (the pack's templates), and what is at stake for its high-value rules."""
    if handling.value_field is not None and isinstance(data.get(handling.value_field), int | float):
        state.value_at_stake = float(data[handling.value_field])  # type: ignore[arg-type]
    for kind, template in handling.facts.items():
        text = _fill(template, data)
        if text:
            state.fact(kind, text, "tool")


def _fill(template: str, data: dict[str, object] | dict[str, str]) -> str:
    """A template over a tool's data; one that names a field the data lacks gives nothing rather than a crash."""
    try:
        return template.format(**data)
    except (KeyError, IndexError, ValueError):
        return ""


def anything_else(pack: BotPack, state: CallState) -> list[Action]:
    state.ask(Waiting.ANYTHING_ELSE)
    state.prompts += 1
    text, prompt_id = pack.spoken("anything_else", pack.prompt("anything_else"), state.frustrated)
    return [Say(text, prompt_id), Listen()]


# --- the booking flow --------------------------------------------------------------------------------------


def booking_start(pack: BotPack, state: CallState, intent: Intent, signals: dict[str, object]) -> list[Action]:
    spec = intent.handling.booking if intent.handling else None
    if spec is None:
        return []
    state.booking = Booking()
    return [
        Explain("self_service_booking", signals),
        CallTool(state.next_call_id(), spec.find, {"phone": state.caller or ""}),
    ]


def booking_result(pack: BotPack, state: CallState, intent: Intent, event: ToolResult) -> list[Action]:
    """The booking flow's tools answer in turn: the booking found, the options, the booking made."""
    spec = intent.handling.booking if intent.handling else None
    booking = state.booking
    if spec is None or booking is None:
        return []
    data = dict(event.data)
    if event.tool == spec.find:
        return _booking_found(pack, state, intent, data)
    if event.tool == spec.options:
        raw = data.get(spec.options_field)
        options = [str(x) for x in raw][:2] if isinstance(raw, list) else []
        if len(options) < 2:
            return _booking_failed(pack, state, intent, "booking_pick_failed")
        booking.options = options
        state.ask(Waiting.BOOKING_PICK)
        state.prompts += 1
        values = {k: str(v) for k, v in booking.found.items()}
        text = _fill(pack.prompts["booking_found"], {**values, "option_one": options[0], "option_two": options[1]})
        return [Explain("offer_options", {"offered": len(options)}), Say(text, "booking_found"), Listen()]
    if event.tool == spec.book:
        choice = str(data.get(spec.choice_argument, ""))
        state.tried(pack.attempt("booked"), pack.attempt("booked_result", choice=choice))
        first_fact = next(iter(spec.facts), None)
        if first_fact is not None:
            state.fact(first_fact, choice, "tool")
        state.steps_given.add(intent.name)
        state.prompts += 1
        return [
            Explain("booked", {"choice": choice}),
            Say(pack.prompt("booking_done", choice=choice), "booking_done"),
            *anything_else(pack, state),
        ]
    return []


def _booking_found(pack: BotPack, state: CallState, intent: Intent, data: dict[str, object]) -> list[Action]:
    spec = intent.handling.booking if intent.handling else None
    if spec is None or state.booking is None:
        return []
    if not data.get("found"):
        state.tried(pack.attempt("booking_none"), pack.attempt("booking_none_result"))
        state.prompts += 1
        detail = pack.reason("booking_not_found")
        reason = EscalationReason(category="capability_gap", trigger="not_found", detail=detail)
        say = Say(pack.prompt("booking_none"), "booking_none")
        return [Explain("booking_lookup", {"found": False}), say, *handover.decide(pack, state, reason, intent.queue)]
    state.booking.found = data
    state.authentication = "caller_id_matched"
    for kind, template in spec.facts.items():
        text = _fill(template, data)
        if text:
            state.fact(kind, text, "tool")
    first_fact = next(iter(spec.facts), None)
    state.tried(pack.attempt("booking_found"), state.facts[first_fact].value if first_fact in state.facts else "")
    return [Explain("booking_lookup", {"found": True}), CallTool(state.next_call_id(), spec.options, {})]


def booking_pick(pack: BotPack, state: CallState, intent: Intent, reading: Reading) -> list[Action]:
    """The caller's choice between the two options: by position or by the option's own first word."""
    spec = intent.handling.booking if intent.handling else None
    options = state.booking.options if state.booking else []
    if spec is None or len(options) < 2:
        return []
    choice = None
    if reading.has("choose_second"):
        choice = options[1]
    elif reading.has("choose_first"):
        choice = options[0]
    else:
        choice = next((o for o in options if o.split(",")[0].lower() in reading.normalised), None)
    if choice is None:
        state.failures["booking_pick"] += 1
        if state.failures["booking_pick"] >= pack.policy.max_failures:
            return _booking_failed(pack, state, intent, "booking_pick_failed")
        state.ask(Waiting.BOOKING_PICK)
        state.prompts += 1
        text = pack.prompt("booking_pick_again", option_one=options[0], option_two=options[1])
        return [Say(text, "booking_pick_again"), Listen()]
    arguments = {"phone": state.caller or "", spec.choice_argument: choice}
    return [Explain("booking_chosen", {"choice": choice}), CallTool(state.next_call_id(), spec.book, arguments)]


def _booking_failed(pack: BotPack, state: CallState, intent: Intent, key: str) -> list[Action]:
    reason = EscalationReason(category="capability_gap", trigger="repeated_failure", detail=pack.reason(key))
    return handover.decide(pack, state, reason, intent.queue)
