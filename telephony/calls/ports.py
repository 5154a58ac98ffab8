"""What a live call needs from outside it, named once: the socket, a voice, the desk, and shared parts.

`SessionDeps` names everything calls on one server share, so a test can build a call from parts; the
protocols say the least each outside part must do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from dialogs.dialog import DialogFactory
from dialogs.pack import CallerProfile
from dialogs.routing import Availability, Router
from dialogs.tools import ToolBox
from telephony.calls.admission import StreamTickets
from telephony.calls.metrics import DISCARDED, Metrics
from telephony.calls.records import CallRecord
from telephony.calls.registry import CallRegistry, LiveStreams
from voice.recognition import RecognitionService
from voice.vad import VadConfig

if TYPE_CHECKING:
    from telephony.calls.session import CallSession


MAX_READ_BATCH = 10  # the most media messages a transport may gather into one read (`Transport.read_promptly`)


class Transport(Protocol):
    """The websocket, as the session needs it."""

    async def send(self, text: str) -> None: ...
    def send_now(self, texts: Sequence[str]) -> bool:
        """Write these messages at once, in one write, if the socket can take them now; False (nothing sent)
        when it cannot: they are then sent one by one with `send`."""
        ...

    async def close(self, code: int = 1000) -> None: ...
    def read_promptly(self, promptly: bool) -> None:
        """While True, each inbound message is read as it comes, not batched with the next (the caller's
        utterance may end with the next frames, or their voice may be about to cut the bot off, and neither the
        reply nor the `clear` must wait for more). Otherwise up to `MAX_READ_BATCH` may be read together."""


class Synthesizer(Protocol):
    """Prompt audio as 8 kHz μ-law: `cached` never blocks, `synthesize` may take tens of ms."""

    def cached(self, text: str) -> bytes | None: ...
    async def synthesize(self, text: str) -> bytes: ...
    async def warm(self, texts: Iterable[str]) -> None: ...
    def close(self) -> None: ...


class DecisionHandler(Protocol):
    """What happens to a call once its stream has decided: the desk, seen from the call."""

    def keep(self, record: CallRecord) -> None:
        """Keep what the call has so far (its start, each caller turn, its decision) before returning, without
        waiting on the store: a crash at any later moment loses none of it."""

    async def decided(self, record: CallRecord) -> None:
        """Send the package on and store the decision with it (the call kept it already), before the caller hears
        what happens next."""

    async def carry_out(self, record: CallRecord) -> bool:
        """Move the live call now; False means: close the stream and let `<Connect action>` carry it out."""

    async def ready_to_move(self, record: CallRecord, announced: Awaitable[object]) -> None:
        """Return when the call should move on: once `announced` (the caller heard what happens next), or sooner
        when a person is already waiting for them."""

    async def ended(self, record: CallRecord) -> None:
        """The stream is over: keep the final record."""


@dataclass
class SessionConfig:
    """Per-call behaviour, from the server settings."""

    vad: VadConfig = field(default_factory=VadConfig)
    no_input_timeout_ms: int = 7000
    mark_grace_ms: int = 1500
    max_message_bytes: int = 64_000


@dataclass
class SessionDeps:
    """What all calls on a server share."""

    recognition: RecognitionService
    synthesizer: Synthesizer
    dialogs: DialogFactory
    registry: CallRegistry
    streams: LiveStreams[CallSession] = field(default_factory=LiveStreams)
    executor: Executor | None = None  # tools and routing, off the event loop
    tools: ToolBox | None = None
    router: Router | None = None
    availability: Availability | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    desk: DecisionHandler | None = None
    caller_profile: CallerProfile | None = None  # the pack's tool that gives a caller's tier, for routing
    tickets: StreamTickets | None = None  # None: every stream is admitted (tests that drive a session directly)
    metrics: Metrics = DISCARDED  # the server's Prometheus series; by default counted and served by nobody
