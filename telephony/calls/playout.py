"""Bot speech on the caller's line: what was sent, what has played, and what a barge-in cut off.

Twilio buffers the audio we send and plays it in order; the only feedback is a mark's echo when the audio
before it has played (or was cleared). So each prompt is followed by a mark, and between echoes we
estimate where playback is from the caller's media clock. Pure bookkeeping: no sockets, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from telephony.calls.records import PromptRecord

NOTHING_DUE = 2**62  # `Playout.check_at_ms` while no prompt is pending: later than any media clock


@dataclass
class Interruption:
    """A barge-in's effect: the prompt that was playing (if any) and how much of it was heard."""

    current: PromptRecord | None
    cut: list[PromptRecord]


class Playout:
    """Tracks prompts between being sent and their mark coming back."""

    def __init__(self, mark_grace_ms: int = 1500) -> None:
        self.mark_grace_ms = mark_grace_ms
        self._pending: dict[str, PromptRecord] = {}
        self._end_ms = 0  # estimated call time when everything sent so far has played
        self._uncuttable = 0  # pending prompts the caller may not cut off
        self._count = 0
        # Asked on every inbound frame, so kept as plain attributes (set by `_refresh` after each change):
        self.interruptible = False  # the caller may cut the bot off now (some prompt pending, every one allows it)
        self.check_at_ms = NOTHING_DUE  # `overdue` finds nothing before this media-clock time

    @property
    def speaking(self) -> bool:
        """True while some sent audio has not been confirmed played."""
        return bool(self._pending)

    @property
    def pending_count(self) -> int:
        """Prompts sent and not yet played or cut."""
        return len(self._pending)

    def start(
        self, prompt_id: str, text: str, duration_ms: int, now_ms: int, *, cached: bool, interruptible: bool
    ) -> PromptRecord:
        """Record a prompt about to be sent; returns its record, whose `mark` is the name to send after it."""
        self._count += 1
        start = max(now_ms, self._end_ms)
        mark = f"{prompt_id}#{self._count}"
        prompt = PromptRecord(
            prompt_id=prompt_id,
            mark=mark,
            text=text,
            cached=cached,
            interruptible=interruptible,
            play_start_ms=start,
            duration_ms=duration_ms,
        )
        self._end_ms = start + duration_ms
        self._pending[mark] = prompt
        self._uncuttable += not interruptible
        self._refresh()
        return prompt

    def echoed(self, mark: str) -> PromptRecord | None:
        """Twilio echoed `mark`: its prompt played to the end. None for a mark we no longer track."""
        prompt = self._pending.pop(mark, None)
        if prompt is not None:
            self._uncuttable -= not prompt.interruptible
            prompt.played = True
            prompt.heard_ms = prompt.duration_ms
            self._refresh()
        return prompt

    def interrupt(self, onset_ms: int, now_ms: int) -> Interruption:
        """The caller talked over the bot from `onset_ms`: everything pending is cut (we send `clear`)."""
        current = None
        cut = list(self._pending.values())
        for prompt in cut:
            prompt.cut_off = True
            heard = min(max(onset_ms - prompt.play_start_ms, 0), prompt.duration_ms)
            prompt.heard_ms = heard
            if current is None and heard < prompt.duration_ms:
                current = prompt
        self._pending.clear()
        self._uncuttable = 0
        self._end_ms = now_ms
        self._refresh()
        return Interruption(current=current, cut=cut)

    def overdue(self, now_ms: int) -> list[PromptRecord]:
        """Prompts whose mark is long overdue; they are taken as played so the call does not stall."""
        if not self._pending or now_ms < self._end_ms + self.mark_grace_ms:
            return []
        late = list(self._pending)
        return [p for p in (self.echoed(mark) for mark in late) if p is not None]

    def _refresh(self) -> None:
        self.interruptible = bool(self._pending) and not self._uncuttable
        self.check_at_ms = self._end_ms + self.mark_grace_ms if self._pending else NOTHING_DUE
