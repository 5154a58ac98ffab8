"""Shared helpers for the dialogs tests: the default pack, event builders, and a driver that feeds a
`DialogManager` a list of events and keeps every action it returned, in order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pytest

from dialogs.actions import Action, CallTool, EndCall, Explain, HandOff, Route, Say
from dialogs.events import (
    CallerSaid,
    CallerUnintelligible,
    CallStarted,
    DialogEvent,
    DtmfPressed,
    Routed,
    SilenceTimeout,
    ToolResult,
)
from dialogs.manager import DialogManager, DialogManagerFactory
from dialogs.pack import BotPack, load_pack
from dialogs.package import HandoffPackage
from dialogs.routing import QueueAvailability, RoutingDecision
from dialogs.tools import ToolBox

CALLER = "+15551230003"  # has orders 481523 and 730018 in the bundled data
LOGIN_CALLER = "+15551230002"  # has a portal account
APPOINTMENT_CALLER = "+15551230004"  # has an appointment with Dr. Patel
CATEGORIES = frozenset(
    {"capability_gap", "confidence_gap", "risk_compliance", "distress", "high_value", "workflow_exception"}
)

_PACK = load_pack()


@pytest.fixture(scope="session")
def pack() -> BotPack:
    """The bundled default pack, loaded once (it is frozen, so tests cannot change it)."""
    return _PACK


def started(caller: str | None = CALLER, t_ms: int = 0) -> CallStarted:
    return CallStarted(call_sid="CA1", caller=caller, called="+15550000000", t_ms=t_ms)


def said(text: str, confidence: float = 0.92, t_ms: int = 5_000) -> CallerSaid:
    """A final transcript; the turn spans the two seconds before `t_ms`."""
    return CallerSaid(text=text, confidence=confidence, start_ms=t_ms - 2_000, end_ms=t_ms, t_ms=t_ms)


def mumbled(t_ms: int = 5_000) -> CallerUnintelligible:
    return CallerUnintelligible(start_ms=t_ms - 1_000, end_ms=t_ms, t_ms=t_ms)


def keys(digits: str, t_ms: int = 5_000) -> list[DtmfPressed]:
    """One `DtmfPressed` per key, as the telephony layer delivers them."""
    return [DtmfPressed(digit=d, t_ms=t_ms + 100 * i) for i, d in enumerate(digits)]


def silence(t_ms: int = 10_000) -> SilenceTimeout:
    return SilenceTimeout(silent_ms=8_000, t_ms=t_ms)


def result(
    tool: str, *, ok: bool = True, call_id: str = "t1", data: Mapping[str, object] | None = None, **fields: object
) -> ToolResult:
    """A tool's answer: `data` and/or keyword `fields`."""
    return ToolResult(call_id=call_id, tool=tool, ok=ok, data={**(data or {}), **fields}, t_ms=6_000)


@dataclass(repr=False)
class Call:
    """A dialog and what it did: `turns[i]` is the action list returned for the i-th event fed.

    Its repr is the call's timeline, so a failing assertion shows what the bot said and decided.
    """

    dialog: DialogManager
    toolbox: ToolBox | None = None
    turns: list[list[Action]] = field(default_factory=list)
    route_mode: str = "transfer"

    def feed(self, *events: DialogEvent | Iterable[DialogEvent]) -> list[Action]:
        """Feed events (or lists of events) in order; returns the actions of this feed, flattened.

        With a `toolbox`, every `CallTool` is run at once and its `ToolResult` fed back, as the call session does.
        """
        out: list[Action] = []
        for item in events:
            for event in [item] if not isinstance(item, Iterable) else item:
                out.extend(self._handle(event))
        return out

    def _handle(self, event: DialogEvent) -> list[Action]:
        actions = self.dialog.handle(event)
        self.turns.append(actions)
        out = list(actions)
        for action in actions:
            if isinstance(action, CallTool) and self.toolbox is not None:
                ok, data = self.toolbox.run(action.tool, action.arguments)
                out.extend(self._handle(ToolResult(action.call_id, action.tool, ok, data, t_ms=event.t_ms)))
            if isinstance(action, Route):  # as the session does without a router: a live transfer, queue as given
                decision = RoutingDecision(
                    queue=action.package.recommended_queue,
                    mode=self.route_mode,  # type: ignore[arg-type]
                    availability=QueueAvailability(open=self.route_mode == "transfer"),
                )
                out.extend(self._handle(Routed(decision, t_ms=event.t_ms)))
        return out

    def __repr__(self) -> str:
        lines = [f"Call {self.dialog.state.call_sid}:"]
        for i, turn in enumerate(self.turns):
            lines.append(f"  {i}: " + ", ".join(_brief(a) for a in turn))
        return "\n".join(lines)

    @property
    def actions(self) -> list[Action]:
        return [a for turn in self.turns for a in turn]

    @property
    def says(self) -> list[Say]:
        return [a for a in self.actions if isinstance(a, Say)]

    @property
    def prompt_ids(self) -> list[str]:
        return [a.prompt_id for a in self.says]

    @property
    def spoken(self) -> str:
        """Everything the bot said, lower-cased, one line."""
        return " ".join(s.text for s in self.says).lower()

    @property
    def tools(self) -> list[CallTool]:
        return [a for a in self.actions if isinstance(a, CallTool)]

    @property
    def explains(self) -> list[Explain]:
        return [a for a in self.actions if isinstance(a, Explain)]

    @property
    def handoffs(self) -> list[HandOff]:
        return [a for a in self.actions if isinstance(a, HandOff)]

    @property
    def ended(self) -> bool:
        return any(isinstance(a, EndCall) for a in self.actions)

    @property
    def package(self) -> HandoffPackage:
        """The one handoff package of the call (fails the test when there is none or more than one)."""
        assert len(self.handoffs) == 1, f"expected one HandOff, got {len(self.handoffs)}: {self.actions}"
        return self.handoffs[0].package


def call(
    *events: DialogEvent | Iterable[DialogEvent], caller: str | None = CALLER, tools: ToolBox | None = None
) -> Call:
    """A new call on the default pack: CallStarted from `caller`, then `events`, in order (tools run by `tools`)."""
    c = Call(DialogManagerFactory(_PACK).new_dialog("CA1"), tools)
    c.feed(started(caller), *events)
    return c


def _brief(action: Action) -> str:
    if isinstance(action, Say):
        return f"Say[{action.prompt_id}]"
    if isinstance(action, Explain):
        return f"Explain[{action.decision}]"
    if isinstance(action, CallTool):
        return f"CallTool[{action.tool} {dict(action.arguments)}]"
    if isinstance(action, HandOff):
        reason = action.package.reason
        return f"HandOff[{reason.category}/{reason.trigger} -> {action.package.recommended_queue}]"
    return type(action).__name__
