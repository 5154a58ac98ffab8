"""PromptSpeaker: prompt audio goes out in order, and nothing of the bot's is sent between a barge-in and its
`clear` (Twilio would drop it with the rest)."""

from __future__ import annotations

import asyncio
import functools

from dialogs.actions import Say
from telephony.calls.playout import Playout
from telephony.calls.speaker import PromptSpeaker
from telephony.twilio.protocol import MediaStreamProtocol
from tests.telephony.conftest import FixedSynthesizer, RecordingTransport, StreamScript


def speaker() -> tuple[PromptSpeaker, RecordingTransport, MediaStreamProtocol]:
    protocol = MediaStreamProtocol()
    twilio = StreamScript()
    protocol.receive(twilio.connected())
    protocol.receive(twilio.start())
    transport = RecordingTransport()
    return PromptSpeaker(FixedSynthesizer(400), transport, protocol), transport, protocol


async def test_after_a_barge_in_nothing_is_sent_until_the_clear_has_gone() -> None:
    voice, transport, protocol = speaker()
    voice.cut()  # a barge-in: its `clear` is still to be sent
    say = Say("Your order ships today.", "p2", interruptible=False)  # not droppable: it waits instead
    prompt = Playout().start("p2", say.text, 400, 0, cached=True, interruptible=False)
    audio, _ = await voice.audio(say, None) or (b"", False)
    sending = asyncio.create_task(voice.send(say, prompt, audio, voice.generation, lambda: None))
    await asyncio.sleep(0.01)
    assert not transport.sent and not sending.done()
    await transport.send(protocol.clear())
    voice.cleared()
    assert await sending
    assert [m["event"] for m in transport.sent] == ["clear", "media", "media", "mark"]


async def test_an_interruptible_prompt_asked_for_before_a_barge_in_is_dropped_not_held() -> None:
    voice, transport, _ = speaker()
    say = Say("What else can I do for you?", "p3")
    generation = voice.generation
    prompt = Playout().start("p3", say.text, 400, 0, cached=True, interruptible=True)
    voice.cut()
    voice.cleared()
    assert await voice.send(say, prompt, b"\xff" * 3200, generation, lambda: None) is False
    assert not transport.sent


async def test_a_prompt_goes_out_in_one_write_when_the_socket_takes_it_and_frame_by_frame_when_not() -> None:
    """One write per prompt saves a send per 200 ms of audio; a socket that cannot take it now gets the same
    messages one by one, each checked for a barge-in, as before."""
    sent_by_write: list[list[dict[str, object]]] = []
    for busy in (False, True):
        voice, transport, _ = speaker()
        transport.busy = busy
        say = Say("Your order ships today.", "p4")
        prompt = Playout().start("p4", say.text, 400, 0, cached=True, interruptible=True)
        first_frames: list[int] = []
        assert await voice.send(
            say, prompt, b"\xff" * 3200, voice.generation, functools.partial(first_frames.append, 1)
        )
        assert first_frames == [1]  # the reply is measured once, at its first frame
        assert transport.writes == ([] if busy else [3])  # 400 ms: two media messages and the mark, in one write
        sent_by_write.append(transport.sent)
    assert [m["event"] for m in sent_by_write[0]] == ["media", "media", "mark"]
    assert sent_by_write[0] == sent_by_write[1]
