"""What the dialog asks the call to do: speak, listen, run a tool, hand off, or end.

Actions are plain immutable values; the telephony session carries them out in order. A `Say` is always
played to the end (or cut by barge-in) before a later `HandOff` or `EndCall` takes the call away, so the
caller hears what happens next before it happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dialogs.package import CallbackRequest, HandoffPackage
from dialogs.routing import CallMetadata, HandoffMode, RoutingDecision


@dataclass(frozen=True, slots=True)
class Say:
    """Speak `text`; `prompt_id` names it in marks, logs and replay results."""

    text: str
    prompt_id: str
    interruptible: bool = True


@dataclass(frozen=True, slots=True)
class Listen:
    """Wait for the caller; `phrases` narrows the recogniser (digits for an order number, say)."""

    phrases: tuple[str, ...] = ()
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class CallTool:
    """Run a tool (order lookup, appointment slots, ...); its answer comes back as a ToolResult."""

    call_id: str
    tool: str
    arguments: Mapping[str, object] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class Route:
    """Ask where the handoff can go now (queue, live or not, expected wait); answered by a `Routed` event.

    `metadata` is what the call itself says about the caller (tier, region), for the routing rules.
    """

    package: HandoffPackage
    metadata: CallMetadata = field(default_factory=CallMetadata)


@dataclass(frozen=True, slots=True)
class HandOff:
    """Give the call to a person: the package says who the caller is, what they need and why.

    `routing` says where and how (its `mode`: a live `transfer`, a `callback`, a `voicemail`, or a `ticket`),
    with its reasons; a callback also carries the number and time the caller chose.
    """

    package: HandoffPackage
    routing: RoutingDecision
    callback: CallbackRequest | None = None

    @property
    def mode(self) -> HandoffMode:
        return self.routing.mode


@dataclass(frozen=True, slots=True)
class EndCall:
    """Hang up after what was said has played; `reason` is for the record, not the caller."""

    reason: str


@dataclass(frozen=True, slots=True)
class Explain:
    """Why the dialog did what it did: a named decision and the signals behind it, for the call's log."""

    decision: str
    signals: Mapping[str, object] = field(default_factory=dict, hash=False)


Action = Say | Listen | CallTool | Route | HandOff | EndCall | Explain


ASK_AGAIN_PROMPTS = frozenset({
    "no_input", "low_confidence", "low_confidence_first", "clarify", "clarify_between", "slot_again",
    "slot_confirm_length", "slot_confirm_conflict", "not_found", "booking_pick_again", "tool_failed",
})  # fmt: skip
"""The prompts that say the caller's last turn failed: not heard, not understood, not found, or a tool broke."""


def asks_again(prompt_id: str) -> bool:
    """Whether a spoken prompt (by its id, `slot_again:order_number` or a frustrated `clarify:short`) is a re-ask:
    what the review counts as a failed turn."""
    return prompt_id.split(":", 1)[0] in ASK_AGAIN_PROMPTS


def prompt_key(prompt_id: str) -> str:
    """The prompt a spoken id came from, without the frustrated `:short` variant."""
    return prompt_id.removesuffix(":short")
