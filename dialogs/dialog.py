"""The seam between a call and its conversation: events in, actions out, nothing else.

The telephony session only knows these two protocols, so the first dialog and the full dialog manager
are interchangeable behind them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from dialogs.actions import Action
from dialogs.events import DialogEvent
from dialogs.package import Category, EscalationReason, HandoffPackage, TranscriptTurn


class Dialog(Protocol):
    """One call's conversation: a pure function of the events it has been given."""

    def handle(self, event: DialogEvent) -> list[Action]:
        """Take one event and return what to do now, in order (often nothing)."""
        ...


class DialogFactory(Protocol):
    """Makes one dialog per call, and names the fixed prompts to synthesise at start-up."""

    def fixed_prompts(self) -> Iterable[str]:
        """Every prompt text known before a call starts, so none needs synthesis mid-call."""
        ...

    def new_dialog(self, call_sid: str) -> Dialog:
        """A fresh dialog for `call_sid`."""
        ...

    def fallback(
        self,
        call_sid: str,
        caller: str | None,
        transcript: tuple[TranscriptTurn, ...],
        reason: EscalationReason,
    ) -> HandoffPackage:
        """The package for a call whose conversation broke (a dropped stream, a bug): what the caller said."""
        ...

    def fallback_reason(
        self, trigger: str, category: Category = "workflow_exception", words: str | None = None, **details: object
    ) -> EscalationReason:
        """Why a broken call was handed on, in the pack's words (its `reasons[words or trigger]`)."""
        ...
