"""The handoff itself, once decided: ask the router where it can go, tell the caller which of the four they
are getting (a transfer now, a callback, voicemail or a ticket), ask the two callback questions when needed,
then hand the call over. Pure: a pack and a call's state in, actions out.
"""

from __future__ import annotations

from collections.abc import Mapping

from dialogs.actions import Action, Explain, HandOff, Listen, Route, Say
from dialogs.events import Routed
from dialogs.pack import BotPack
from dialogs.package import CallbackRequest, EscalationReason
from dialogs.routing import CallMetadata
from dialogs.state import CallState, PendingHandoff, Waiting
from dialogs.summary import build_package, sending_what
from dialogs.understanding import Reading
from dialogs.wording import last_digits, minutes


def decide(
    pack: BotPack, state: CallState, reason: EscalationReason, queue: str, signals: Mapping[str, object] | None = None
) -> list[Action]:
    """Decide to hand off: build the package, then ask routing where it can go before promising anything."""
    package = build_package(pack, state, reason, queue)
    state.handoff = PendingHandoff(package)
    state.ask(Waiting.ROUTE)
    explain = Explain(
        f"handoff:{reason.trigger}",
        {
            "category": reason.category,
            "queue": queue,
            "urgency": state.urgency,
            "frustrated": state.frustrated,
            "failures": sum(state.failures.values()),
            "intent": state.intent or "",
            **(signals or {}),
        },
    )
    metadata = CallMetadata(tier=state.parameters.get("tier") or None, region=state.parameters.get("region") or None)
    return [explain, Route(package, metadata)]


def routed(pack: BotPack, state: CallState, event: Routed) -> list[Action]:
    """Tell the caller which of the four they are getting, then hand off (a callback asks two things first)."""
    pending = state.handoff
    if pending is None or state.waiting is not Waiting.ROUTE:
        return []
    decision = event.decision
    pending.routed = decision
    if event.caller_id_matched and state.authentication == "unverified":
        state.authentication = "caller_id_matched"
        pending.package = pending.package.model_copy(update={"authentication": "caller_id_matched"})
    team = decision.queue.replace("_", " ")
    what = sending_what(pack, state)
    words = pack.words
    explain = Explain(
        f"announce:{decision.mode}", {"queue": decision.queue, "expected_wait_s": decision.expected_wait_s}
    )
    if decision.mode == "transfer":
        says = [Say(pack.prompt("handoff", team=team), f"handoff:{decision.queue}", interruptible=False)]
        if decision.expected_wait_s:
            wait = minutes(decision.expected_wait_s, words.minute, words.minutes)
            says.append(Say(pack.prompt("handoff_wait", minutes=wait), "handoff_wait", interruptible=False))
        says.append(Say(pack.prompt("handoff_sending", what=what), "handoff_sending", interruptible=False))
        return hand_over(state, explain, says)
    if decision.mode in ("voicemail", "ticket"):
        key = f"{decision.mode}_intro"
        return hand_over(state, explain, [Say(pack.prompt(key, team=team, what=what), key, interruptible=False)])
    key = "callback_offer_closed" if not decision.availability.open else "callback_offer_busy"
    offer = Say(pack.prompt(key, team=team), key, interruptible=False)
    return [explain, offer, *_ask_callback_number(pack, state)]


def _ask_callback_number(pack: BotPack, state: CallState) -> list[Action]:
    state.prompts += 1
    if state.caller:
        state.ask(Waiting.CALLBACK_NUMBER)
        spoken = last_digits(state.caller, unknown=pack.words.on_file)
        return [Say(pack.prompt("callback_number", last_digits=spoken), "callback_number"), Listen()]
    state.ask(Waiting.CALLBACK_DIGITS)
    return [Say(pack.prompt("callback_number_other"), "callback_number_other"), Listen()]


def callback_keys(pack: BotPack, state: CallState, digit: str) -> list[Action]:
    """A key pressed during the callback questions: a window's number, or one digit of a callback number."""
    if state.waiting is Waiting.CALLBACK_WINDOW:
        return callback_answer(pack, state, None, digit)
    if not digit.isdigit():
        return []
    state.keyed_digits += digit
    if len(state.keyed_digits) < pack.policy.callback_digits:
        return []
    digits, state.keyed_digits = state.keyed_digits, ""
    return callback_answer(pack, state, None, digits)


def callback_answer(pack: BotPack, state: CallState, reading: Reading | None, digits: str) -> list[Action]:
    """The two callback questions: which number (caller ID by default), and when."""
    pending = state.handoff
    if pending is None:
        return []
    if state.waiting in (Waiting.CALLBACK_NUMBER, Waiting.CALLBACK_DIGITS):
        number = None
        if len(digits) >= pack.policy.callback_digits:
            number = "+" + digits if len(digits) > pack.policy.callback_digits else "+1" + digits
        elif state.waiting is Waiting.CALLBACK_NUMBER and (reading is None or not reading.has("deny")):
            number = state.caller  # yes, or no answer at all: the number they are calling from
        elif pending.asked_number_twice:
            number = state.caller
        state.prompts += 1
        if number is None:
            pending.asked_number_twice = True
            state.ask(Waiting.CALLBACK_DIGITS)
            return [Say(pack.prompt("callback_number_other"), "callback_number_other"), Listen()]
        pending.callback_number = number
        state.ask(Waiting.CALLBACK_WINDOW)
        phrases = tuple(word for window in pack.callback_windows for word in window.words)
        return [Say(pack.prompt("callback_window"), "callback_window"), Listen(phrases)]
    window = _window(pack, reading, digits)
    pending.callback_window = window
    chosen = pack.window(window)
    spoken = chosen.spoken if chosen is not None else pack.words.soon
    say = Say(
        pack.prompt("callback_confirm", window=spoken, what=sending_what(pack, state)),
        "callback_confirm",
        interruptible=False,
    )
    queue = pending.routed.queue if pending.routed else pending.package.recommended_queue
    explain = Explain("callback_requested", {"queue": queue, "window": window})
    return hand_over(state, explain, [say])


def _window(pack: BotPack, reading: Reading | None, digits: str) -> str:
    """The window the caller chose: by its key (1, 2, 3...) or its words; "soon" when they did not say."""
    windows = pack.callback_windows
    if digits[:1].isdigit() and 1 <= int(digits[0]) <= len(windows):
        return windows[int(digits[0]) - 1].name
    said = reading.normalised.split() if reading is not None else []
    return next((w.name for w in windows if any(word in said for word in w.words)), "soon")


def hand_over(state: CallState, explain: Explain, says: list[Say]) -> list[Action]:
    """What the caller hears last, then the handoff itself; the dialog is over."""
    pending = state.handoff
    if pending is None or pending.routed is None:
        return []
    state.done = True
    state.waiting = None
    callback = None
    if pending.routed.mode == "callback":
        callback = CallbackRequest(number=pending.callback_number, window=pending.callback_window or "soon")
    return [explain, *says, HandOff(pending.package, pending.routed, callback)]
