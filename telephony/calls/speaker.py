"""The bot's voice on the line: prompt audio (cached first), sent in 200 ms messages with a mark after each.

Twilio plays outbound media of any size, buffered in order ("The audio can be of any size"), and a `clear`
drops whatever is buffered; so the prompt goes out in 200 ms messages, not 20 ms ones: a tenth of the
websocket messages, JSON and base64 calls for the same audio. The audio is padded to whole 20 ms frames.

A barge-in bumps the generation: prompts queued or being sent before it are dropped at once, so the caller
never hears the rest of what they talked over. What has played is tracked by the call's `Playout`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from dialogs.actions import Say
from telephony.calls.ports import Synthesizer, Transport
from telephony.calls.records import PromptRecord
from telephony.twilio.protocol import MediaStreamProtocol
from voice.codec import ULAW_FRAME_BYTES
from voice.errors import SynthesisError

log = logging.getLogger(__name__)

SEND_BYTES = 10 * ULAW_FRAME_BYTES  # 200 ms of 8 kHz μ-law in each outbound media message


class PromptSpeaker:
    """Turns `Say` actions into media frames and marks on one call's stream."""

    def __init__(self, synthesizer: Synthesizer, transport: Transport, protocol: MediaStreamProtocol) -> None:
        self._synthesizer = synthesizer
        self._transport = transport
        self._protocol = protocol
        self.generation = 0  # bumped by each barge-in; prompts queued before it are dropped
        self.idle = asyncio.Event()  # set while nothing sent is waiting to be played
        self.idle.set()
        self._cleared = asyncio.Event()  # unset from a barge-in until Twilio is told to drop what it holds
        self._cleared.set()

    def cut(self) -> None:
        """A barge-in: whatever is queued or being sent now is dropped, and nothing is sent until `cleared`."""
        self.generation += 1
        self.idle.set()
        self._cleared.clear()

    def cleared(self) -> None:
        """`clear` has gone to Twilio after a barge-in: audio sent from now on is played, not dropped with it."""
        self._cleared.set()

    def moot(self, say: Say, generation: int) -> bool:
        """The caller talked over the bot since this prompt was asked for, and it may be dropped."""
        return say.interruptible and generation != self.generation

    async def audio(self, say: Say, call_sid: str | None) -> tuple[bytes, bool] | None:
        """The prompt's 8 kHz μ-law audio and whether it came from the cache; None when it cannot be spoken."""
        audio = self._synthesizer.cached(say.text)
        if audio is not None:
            return audio, True
        try:
            return await self._synthesizer.synthesize(say.text), False
        except SynthesisError as exc:
            log.error("could not speak prompt %s on call %s: %s", say.prompt_id, call_sid, exc)
            return None

    async def send(
        self, say: Say, prompt: PromptRecord, audio: bytes, generation: int, on_first_frame: Callable[[], None]
    ) -> bool:
        """Send the frames, then the prompt's mark; False when a barge-in cut it off while sending."""
        self.idle.clear()
        frames = self._protocol.media_frames(audio, SEND_BYTES, pad_to=ULAW_FRAME_BYTES)
        mark = self._protocol.mark(prompt.mark)
        if self._cleared.is_set() and not self.moot(say, generation) and self._transport.send_now([*frames, mark]):
            on_first_frame()  # the whole prompt in one write: Twilio plays its frames in order
            return True
        first = True  # the socket is busy (or a barge-in's `clear` is due): frame by frame, each checked
        for frame in frames:
            if not self._cleared.is_set():  # a barge-in's `clear` is on its way: it would drop this too
                await self._cleared.wait()
            if self.moot(say, generation):
                return False  # the rest was never queued at Twilio
            await self._transport.send(frame)
            if first:
                first = False
                on_first_frame()
        await self._transport.send(mark)
        return True
