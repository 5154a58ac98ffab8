"""CallSession driven message by message, as the websocket handler drives it, with oracle ASR and a fixed voice.

The transport is a recording fake of the real interface; everything else is real: the protocol, the VAD on
real audio, the recognition worker in its executor, the dialog, the playout tracking.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable

import pytest

from telephony.calls.ports import SessionConfig, SessionDeps
from telephony.calls.records import CallRecord
from telephony.calls.registry import CallRegistry
from telephony.calls.session import BargedIn, CallSession
from tests.telephony.conftest import CALL_SID, FixedSynthesizer, RecordingTransport, StreamScript, voiced_ulaw
from tests.telephony.first_dialog import FirstDialogFactory, FirstDialogPrompts
from voice.oracle import OracleRecognizerFactory, OracleUtterance
from voice.recognition import LocalRecognition
from voice.vad import VadConfig

PROMPTS = FirstDialogPrompts()


class SavesSeen:
    """The desk as the call sees it: what each save was asked to keep (turns and decision at the time)."""

    def __init__(self) -> None:
        self.saves: list[tuple[str, int, str | None]] = []

    def _seen(self, kind: str, record: CallRecord) -> None:
        self.saves.append((kind, len(record.turns), record.decision.kind if record.decision else None))

    def keep(self, record: CallRecord) -> None:
        self._seen("kept", record)

    async def decided(self, record: CallRecord) -> None:
        self._seen("decided", record)

    async def carry_out(self, record: CallRecord) -> bool:
        return False

    async def ready_to_move(self, record: CallRecord, announced: Awaitable[object]) -> None:
        await announced

    async def ended(self, record: CallRecord) -> None:
        self._seen("ended", record)


class Call:
    """A session under test, with its Twilio-side script and the transport it sends on."""

    def __init__(
        self, said: list[str], *, prompt_ms: int = 1000, no_input_ms: int = 7000, direct: bool = False,
        vad: VadConfig | None = None,
    ) -> None:  # fmt: skip
        self.direct = direct  # driven as the server's socket callback drives it (`receive_now`, then `handle`)
        self.oracle = OracleRecognizerFactory()
        self.oracle.register(CALL_SID, [OracleUtterance(text, 0.9) for text in said])
        self.registry = CallRegistry()
        self.transport = RecordingTransport()
        self.synth = FixedSynthesizer(prompt_ms)
        deps = SessionDeps(
            recognition=LocalRecognition(self.oracle),
            synthesizer=self.synth,
            dialogs=FirstDialogFactory(),
            registry=self.registry,
        )
        config = SessionConfig(vad=vad or VadConfig(), no_input_timeout_ms=no_input_ms)
        self.session = CallSession(deps, config, self.transport)
        self.twilio = StreamScript()

    async def feed(self, *messages: str | list[str]) -> None:
        for message in messages:
            for text in [message] if isinstance(message, str) else message:
                if not self.direct:
                    await self.session.receive(text)
                elif (left := self.session.receive_now(text)) is not None:
                    await self.session.handle(left)

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5.0):
            while not condition():  # noqa: ASYNC110  (polling a session under test)
                await asyncio.sleep(0.002)

    async def begin(self) -> None:
        await self.feed(self.twilio.connected(), self.twilio.start())
        await self.until(lambda: len(self.transport.marks()) == 1)

    async def echo_marks(self) -> None:
        """Twilio's side: every mark sent so far has played."""
        for name in self.transport.marks():
            await self.feed(self.twilio.mark(name))

    async def speak(self, ms: int = 1200, silence_ms: int = 800) -> None:
        await self.feed(self.twilio.frames(voiced_ulaw(ms)), self.twilio.silence(silence_ms))

    @property
    def record(self):  # type: ignore[no-untyped-def]
        return self.registry.get(CALL_SID)


async def test_greeting_goes_out_as_200ms_ulaw_messages_followed_by_one_mark() -> None:
    call = Call([])
    await call.begin()
    sent = call.transport.sent
    media = [m for m in sent if m["event"] == "media"]
    assert len(media) == 5  # 1000 ms of prompt audio in 200 ms messages
    assert all(len(base64.b64decode(m["media"]["payload"])) == 1600 for m in media)
    assert all(set(m) == {"event", "streamSid", "media"} for m in media)
    assert sent[-1]["event"] == "mark" and sent.index(sent[-1]) == len(media)
    assert call.record.prompts[0].text == PROMPTS.greeting


@pytest.mark.parametrize("direct", [False, True], ids=["receive", "receive_now"])
async def test_caller_asking_for_a_person_hears_the_transfer_prompt_then_the_stream_closes_with_a_handoff(
    direct: bool,
) -> None:
    call = Call(["I want to speak to an agent"], direct=direct)
    await call.begin()
    await call.echo_marks()
    await call.speak()
    await call.until(lambda: len(call.transport.marks()) == 2)
    assert call.transport.closed_with is None  # not before the caller has heard what happens next
    await call.echo_marks()
    await call.until(lambda: call.transport.closed_with is not None)
    decision = call.record.decision
    assert decision is not None and decision.kind == "handoff"
    assert decision.package.primary_issue == "I want to speak to an agent"
    assert decision.package.reason.trigger == "explicit_request"
    assert [t.speaker for t in call.record.turns] == ["bot", "caller", "bot"]
    assert call.record.prompts[1].text == PROMPTS.transfer


@pytest.mark.parametrize("direct", [False, True], ids=["receive", "receive_now"])
async def test_caller_talking_over_the_bot_gets_clear_and_the_cut_is_recorded(direct: bool) -> None:
    call = Call(["hello there"], prompt_ms=3000, direct=direct)
    await call.begin()
    await call.feed(call.twilio.silence(600))  # the caller hears 600 ms of the greeting, then talks
    await call.feed(call.twilio.frames(voiced_ulaw(400)))
    await call.until(lambda: bool(call.transport.events("clear")))
    prompt = call.record.prompts[0]
    assert prompt.cut_off and not prompt.played
    assert 560 <= (prompt.heard_ms or 0) <= 660
    barge = [e for e in call.record.timeline if e.kind == "barge_in"]
    assert barge and barge[0].detail["prompt_id"] == "p1"
    await call.feed(call.twilio.mark(call.transport.marks()[0]))  # Twilio echoes the cleared mark
    assert call.record.prompts[0].played is False


async def test_a_turn_is_kept_as_it_comes_and_a_turn_that_decides_is_kept_once_with_its_decision() -> None:
    """The call is kept from its start and at each turn; the turn that leads to a decision is kept by the
    decision's keep, not by a second one a moment before it; the desk's `decided` saves it again with the
    package, once."""
    call = Call(["hello there", "agent please"])
    desk = SavesSeen()
    call.session.deps.desk = desk
    await call.begin()
    await call.echo_marks()
    await call.speak()
    await call.until(lambda: len(desk.saves) >= 2)
    await call.echo_marks()
    await call.speak()
    await call.until(lambda: any(kind == "decided" for kind, _, _ in desk.saves))
    await asyncio.sleep(0.05)  # a second save of that turn would be queued by now
    # turns: the greeting, the caller, the bot's reply, the caller again (then the announcement)
    assert desk.saves == [("kept", 0, None), ("kept", 2, None), ("kept", 4, "handoff"), ("decided", 5, "handoff")]


async def test_what_the_caller_said_is_kept_before_anything_else_can_see_it() -> None:
    """No moment of the event loop shows a caller turn, or a decision, that the desk has not been given to
    keep: an API read of the live record, or a kill -9, between the two would find it nowhere on disk."""
    call = Call(["hello there", "agent please"])
    desk = SavesSeen()
    call.session.deps.desk = desk
    gaps: list[str] = []

    async def watch() -> None:
        while True:
            record = call.record
            if record is not None:
                kept_turns = max((turns for _, turns, _ in desk.saves), default=0)
                kept_decision = any(decision for _, _, decision in desk.saves)
                if len(record.turns) > kept_turns and record.turns[-1].speaker == "caller":
                    gaps.append(f"caller turn {len(record.turns)} seen, {kept_turns} turns kept")
                if record.decision is not None and not kept_decision:
                    gaps.append("decision seen, not kept")
            await asyncio.sleep(0)  # every iteration of the loop

    watcher = asyncio.create_task(watch())
    try:
        await call.begin()
        await call.echo_marks()
        await call.speak()
        await call.until(lambda: len(call.record.turns) >= 3)
        await call.echo_marks()
        await call.speak()
        await call.until(lambda: call.record.decision is not None)
        await asyncio.sleep(0.05)
    finally:
        watcher.cancel()
    assert not gaps, gaps


async def test_the_transfer_announcement_cannot_be_talked_over() -> None:
    call = Call(["agent please", "hello hello"], prompt_ms=3000)
    await call.begin()
    await call.echo_marks()
    await call.speak()
    await call.until(lambda: len(call.transport.marks()) == 2)
    await call.speak(800, 100)
    assert not call.transport.events("clear")


async def test_audio_is_heard_at_once_even_while_the_caller_could_cut_the_bot_off() -> None:
    """From the socket's callback, every frame is heard there and then, a prompt that may be talked over
    playing or not; what needs waiting (a key pressed: it may send a `clear`) comes back to be handled in order."""
    call = Call(["hello there"], prompt_ms=3000, direct=True)
    await call.begin()  # the greeting (interruptible) is playing
    assert call.session.playout.interruptible
    assert call.session.receive_now(call.twilio.silence(20)[0]) is None
    await call.echo_marks()  # it has played: nothing can be cut off now
    assert call.session.receive_now(call.twilio.silence(20)[0]) is None
    assert call.session.receive_now(call.twilio.mark("not-a-prompt")) is None  # a mark needs no waiting
    assert call.session.receive_now(call.twilio.dtmf("5")) is not None  # a key: handled in order
    await call.speak()
    await call.until(lambda: len(call.record.turns) >= 2)
    assert call.record.turns[1].text == "hello there"


async def test_a_barge_in_heard_from_the_socket_callback_is_cut_off_at_once_and_cleared_by_handle() -> None:
    """The frame that completes a barge-in stops the prompt there and then (the cut is recorded), and comes
    back as a `BargedIn` whose `clear` goes to Twilio when the websocket loop hands it to `handle`."""
    call = Call(["hello there"], prompt_ms=3000, direct=True)
    await call.begin()
    for text in call.twilio.silence(400):
        assert call.session.receive_now(text) is None
    left = None
    for text in call.twilio.frames(voiced_ulaw(600)):
        left = call.session.receive_now(text)
        if left is not None:
            break
    assert isinstance(left, BargedIn)
    assert left.current is not None and left.current.prompt_id == "p1"
    assert call.record.prompts[0].cut_off and not call.session.playout.speaking
    assert not call.transport.events("clear")  # not yet: sending needs the websocket loop
    await call.session.handle(left)
    assert len(call.transport.events("clear")) == 1
    assert [e.kind for e in call.record.timeline].count("barge_in") == 1


async def test_a_mark_read_from_the_socket_callback_is_handled_there_and_nothing_is_left_for_handle() -> None:
    """Marks need no waiting: the prompt is played, and the dialog told, without waking the websocket loop."""
    call = Call(["hello there"], direct=True)
    await call.begin()
    [greeting] = call.transport.marks()
    assert call.session.receive_now(call.twilio.mark(greeting)) is None
    assert [e.kind for e in call.record.timeline].count("prompt_played") == 1
    assert not call.session.playout.speaking


@pytest.mark.parametrize(
    "garbage",
    [
        "not json",
        '{"event": "telepathy"}',
        "[1, 2, 3]",
        '{"event": "media", "sequenceNumber": "9", "streamSid": "MZ'
        + "2" * 32
        + '", "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "!!!"}}',
        "x" * 70_000,
    ],
)
async def test_bad_messages_are_counted_and_the_call_goes_on(garbage: str) -> None:
    call = Call(["operator"])
    await call.feed(call.twilio.connected(), garbage)  # before start, too
    await call.feed(call.twilio.start())
    await call.until(lambda: len(call.transport.marks()) == 1)
    await call.feed(garbage)
    await call.echo_marks()
    await call.speak()
    await call.until(lambda: len(call.transport.marks()) == 2)
    assert sum(call.record.protocol_errors.values()) >= 1
    assert call.record.turns[1].text == "operator"


async def test_media_before_start_is_refused_without_ending_the_call() -> None:
    call = Call(["agent"])
    await call.feed(call.twilio.connected(), call.twilio.media(b"\xff" * 160))
    assert call.record is None and not call.transport.sent
    await call.begin()


async def test_a_stream_in_a_format_we_cannot_hear_is_handed_to_a_person() -> None:
    call = Call([])
    await call.feed(call.twilio.connected(), call.twilio.start(encoding="audio/x-alaw"))
    await call.until(lambda: call.transport.closed_with is not None)
    decision = call.record.decision
    assert decision is not None and decision.kind == "handoff"
    assert decision.package.reason.category == "workflow_exception"
    assert "unsupported_media_format" in decision.package.reason.trigger


async def test_a_socket_dropped_mid_sentence_keeps_the_callers_words() -> None:
    call = Call(["my card was stolen"])
    await call.begin()
    await call.echo_marks()
    await call.feed(call.twilio.frames(voiced_ulaw(900)))  # still talking when the line drops
    await call.session.end("dropped")
    assert [t.text for t in call.record.turns if t.speaker == "caller"] == ["my card was stolen"]
    assert call.record.stream_end == "dropped"


async def test_dtmf_zero_during_the_greeting_cuts_it_and_hands_off() -> None:
    call = Call([], prompt_ms=3000)
    await call.begin()
    await call.feed(call.twilio.silence(200), call.twilio.dtmf("0"))
    assert call.transport.events("clear")
    await call.until(lambda: len(call.transport.marks()) == 2)
    await call.feed(call.twilio.mark(call.transport.marks()[1]))
    await call.until(lambda: call.transport.closed_with is not None)
    assert call.record.decision.package.reason.trigger == "dtmf_zero"


async def test_silence_after_the_greeting_brings_a_reprompt() -> None:
    call = Call([], no_input_ms=2000)
    await call.begin()
    await call.echo_marks()
    await call.feed(call.twilio.silence(2100))
    await call.until(lambda: len(call.transport.marks()) == 2)
    assert call.record.prompts[1].text == PROMPTS.reprompt


async def test_a_mark_twilio_never_echoes_does_not_stall_the_call() -> None:
    call = Call(["agent"], prompt_ms=500)
    await call.begin()
    await call.feed(call.twilio.silence(500 + 1500 + 40))  # playout end plus the grace period
    assert any(e.kind == "mark_overdue" for e in call.record.timeline)
    await call.speak()
    await call.until(lambda: len(call.transport.marks()) == 2)


async def test_stop_from_twilio_ends_the_stream_as_the_callers_hang_up() -> None:
    call = Call([])
    await call.begin()
    await call.feed(call.twilio.stop())
    assert call.record.stream_end == "caller_stop"
    assert call.record.decision is None


async def test_reply_latency_is_measured_from_the_end_of_speech_window() -> None:
    call = Call(["agent"])
    await call.begin()
    await call.echo_marks()
    await call.speak(1000, 800)
    await call.until(lambda: len(call.transport.marks()) == 2)
    (latency,) = call.record.latencies
    assert latency.window_closed_ms - latency.last_voiced_ms == 600
    assert latency.cached and latency.after_window_ms >= 0


class BrokenTools:
    """A ToolBox whose backend is down."""

    names = frozenset({"lookup_order"})

    def run(self, tool: str, arguments: object) -> tuple[bool, dict[str, object]]:
        raise ConnectionError("orders database unreachable")


async def test_a_tool_that_fails_is_reported_to_the_dialog_which_hands_off() -> None:
    from dialogs.manager import DialogManagerFactory

    call = Call(["where is my order 4 8 1 5 2 3"])
    call.session.deps.dialogs = DialogManagerFactory()
    call.session.deps.tools = BrokenTools()
    await call.begin()
    await call.echo_marks()
    await call.speak()
    await call.until(lambda: call.record.decision is not None)
    assert call.record.decision.package.reason.trigger == "tool_failed"
    tool_notes = [e for e in call.record.timeline if e.kind == "tool"]
    assert tool_notes and tool_notes[0].detail["ok"] is False
    assert any(e.kind == "dialog" and e.detail["decision"] == "handoff:tool_failed" for e in call.record.timeline)


class DialogThatBreaksOnSpeech:
    """A dialog with a bug: it greets, then raises on the caller's first sentence."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def handle(self, event: object) -> list[object]:
        from dialogs.events import CallerSaid

        if isinstance(event, CallerSaid):
            raise KeyError("a bug in the dialog")
        return self.inner.handle(event)  # type: ignore[attr-defined,no-any-return]


async def test_a_dialog_that_raises_hands_the_caller_on_with_what_they_said() -> None:
    from dialogs.manager import DialogManagerFactory

    class BuggyDialogs(DialogManagerFactory):
        def new_dialog(self, call_sid: str) -> DialogThatBreaksOnSpeech:  # type: ignore[override]
            return DialogThatBreaksOnSpeech(super().new_dialog(call_sid))

    call = Call(["my prescription refill is stuck and nobody can tell me why"])
    call.session.deps.dialogs = BuggyDialogs()
    await call.begin()
    await call.echo_marks()
    await call.speak()
    await call.until(lambda: call.transport.closed_with is not None)
    decision = call.record.decision
    assert decision is not None and decision.kind == "handoff"
    assert decision.package.reason.trigger == "dialog_error"
    assert "my prescription refill is stuck" in decision.package.transcript[-1].text  # what they said goes along
    assert any(e.kind == "dialog_error" for e in call.record.timeline)


async def test_reads_turn_prompt_while_the_caller_talks_over_the_bot_until_the_barge_in_is_heard() -> None:
    """A batched read would hold the frame that completes a barge-in for its partners, and the bot would talk on
    over the caller: from the first voiced frame over an interruptible prompt, each message is read as it comes,
    and reads batch again once the bot has been cut off."""
    call = Call(["hello there"], prompt_ms=3000, direct=True)
    await call.begin()
    for text in call.twilio.silence(400):
        call.session.receive_now(text)
    assert call.transport.prompt_reads == []  # the bot talks and the caller is quiet: reads may batch
    asked_at = None
    for index, text in enumerate(call.twilio.frames(voiced_ulaw(600))):
        left = call.session.receive_now(text)
        if call.transport.prompt_reads and asked_at is None:
            asked_at = index
        if left is not None:
            break
    assert asked_at == 0  # asked at the first voiced frame, long before the barge-in is complete
    assert isinstance(left, BargedIn)
    assert call.transport.prompt_reads == [True, False]  # and released when the bot was cut off


async def test_reads_stay_prompt_over_the_bot_when_a_barge_in_takes_fewer_frames_than_a_batched_read() -> None:
    """With a barge-in of 100 ms, a voiced run could begin and complete inside one batched read, and the bot
    would talk on over the caller until the batch's last frame came: every message is read as it comes while
    an interruptible prompt plays, and reads batch again once it has played."""
    call = Call(["hello there"], prompt_ms=1000, direct=True, vad=VadConfig(barge_in_ms=100))
    await call.begin()
    for text in call.twilio.silence(400):
        call.session.receive_now(text)
    assert call.transport.prompt_reads == [True]  # the caller is quiet, yet a barge-in may begin at any frame
    await call.echo_marks()
    for text in call.twilio.silence(100):
        call.session.receive_now(text)
    assert call.transport.prompt_reads == [True, False]  # the prompt has played: nothing to cut off


async def test_reads_turn_prompt_only_for_the_last_frames_of_the_end_of_speech_window() -> None:
    """Batched reads would hold the frame that ends the caller's utterance for a partner; the session asks for
    prompt reads just before the window can close, and lets them batch again once it has."""
    call = Call(["hello there"], direct=True)
    await call.begin()
    await call.echo_marks()
    await call.feed(call.twilio.frames(voiced_ulaw(1200)), call.twilio.silence(300))
    assert call.transport.prompt_reads == []  # speaking, then a pause far from the window's end
    await call.feed(call.twilio.silence(500))  # 800 ms of silence: the 600 ms window has closed
    assert call.transport.prompt_reads == [True, False]
    ended = [e for e in call.record.timeline if e.kind == "speech_ended"]
    assert len(ended) == 1
    await call.until(lambda: len(call.transport.marks()) == 2)  # the reply followed
