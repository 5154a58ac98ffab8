"""The simulated phone line of the replay harness: Twilio's side plays bot audio 160 bytes a tick and echoes marks
when their audio has played (or at once on clear); the caller's side starts each scripted step at the right moment
(after the bot and a pause, or barging in), sends DTMF in one tick and hangs up.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.replay.line import GAP_MS, REPLY_TIMEOUT_MS, SILENCE_FRAME, PhoneLine, Tick
from telephony.replay.scenario import CallerStep
from voice.codec import FRAME_MS, ULAW_FRAME_BYTES

BOT = b"\x02"  # a bot audio byte, distinct from silence (0xff) and from the caller's audio
CALLER = b"\x01"


def bot_ms(ms: int) -> bytes:
    return BOT * (ms * 8)


def run(line: PhoneLine, ticks: int, **kwargs: float) -> list[tuple[int, Tick]]:
    """Tick `ticks` times; return each tick with the media time it covered."""
    out = []
    for _ in range(ticks):
        t_ms = line.t_ms
        out.append((t_ms, line.tick(**kwargs)))
    return out


def caller_start(ticks: list[tuple[int, Tick]]) -> int | None:
    """Media time of the first tick that carried caller audio."""
    return next((t for t, tick in ticks if tick.audio != SILENCE_FRAME), None)


def idle_line() -> PhoneLine:
    """A line whose caller has nothing to do, so only the bot side acts."""
    return PhoneLine([], [])


# --- Twilio's side: playing bot audio and echoing marks --------------------------------------------------------


def test_bot_audio_is_played_160_bytes_per_tick() -> None:
    line = idle_line()
    line.bot_media(bytes(range(200)) * 2)  # 400 bytes: two full frames and a part
    before = len(line.heard)
    run(line, 1)
    assert bytes(line.heard[before:]) == (bytes(range(200)) * 2)[:160]
    run(line, 2)
    assert bytes(line.heard[before:]) == bytes(range(200)) * 2 + SILENCE_FRAME[: 480 - 400]
    assert not line._buffer  # nothing left to play


def test_a_mark_is_echoed_on_the_tick_its_audio_finishes() -> None:
    line = idle_line()
    line.bot_media(bot_ms(60))  # three frames
    line.bot_mark("a")
    line.bot_media(bot_ms(30))  # one and a half frames
    line.bot_mark("b")
    marks = [tick.marks for _, tick in run(line, 7)]
    assert marks == [[], [], ["a"], [], ["b"], [], []]


@pytest.mark.parametrize("played_first", [0, 3])
def test_a_mark_with_nothing_buffered_is_echoed_at_once(played_first: int) -> None:
    line = idle_line()
    if played_first:
        line.bot_media(bot_ms(20 * played_first))
        run(line, played_first)
    line.bot_mark("m")
    [(_, tick)] = run(line, 1)
    assert tick.marks == ["m"]


def test_bot_clear_echoes_every_pending_mark_at_once_and_cuts_the_segment() -> None:
    line = idle_line()
    line.bot_media(bot_ms(1000))
    line.bot_mark("a")
    line.bot_media(bot_ms(500))
    line.bot_mark("b")
    run(line, 2)
    heard = len(line.heard)
    line.bot_clear()
    [(_, tick)] = run(line, 1)
    assert tick.marks == ["a", "b"]
    assert bytes(line.heard[heard:]) == SILENCE_FRAME  # nothing more of the bot after the clear
    [segment] = line.segments
    assert segment.cut_off
    assert segment.start_ms == 0 and segment.end_ms == 40
    assert not line.bot_speaking
    clear = [e for e in line.events if e.kind == "clear"]
    assert clear[0].t_ms == 40 and clear[0].detail["dropped_ms"] == 1500 - 40
    assert [tick.marks for _, tick in run(line, 100)] == [[]] * 100  # each mark is echoed once


def test_bot_clear_after_the_audio_finished_does_not_mark_a_cut() -> None:
    line = idle_line()
    line.bot_media(bot_ms(40))
    run(line, 2 + GAP_MS // FRAME_MS + 1)
    line.bot_clear()
    [segment] = line.segments
    assert not segment.cut_off
    assert segment.end_ms == 40


def test_a_gap_in_delivery_shorter_than_gap_ms_continues_the_same_segment() -> None:
    line = idle_line()
    line.bot_media(bot_ms(40))
    run(line, 2 + (GAP_MS // FRAME_MS) - 2)
    line.bot_media(bot_ms(40))
    run(line, 10)
    assert len(line.segments) == 1


def test_audio_after_a_longer_gap_starts_a_new_segment() -> None:
    line = idle_line()
    line.bot_media(bot_ms(40))
    run(line, 10)
    line.bot_media(bot_ms(40))
    run(line, 10)
    assert [(s.start_ms, s.end_ms) for s in line.segments] == [(0, 40), (200, 240)]


# --- the caller's side ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pause_ms", [100, 400, 1000])
def test_a_speech_step_waits_for_the_bot_to_finish_and_pause_ms(pause_ms: int) -> None:
    line = PhoneLine([CallerStep(say="hello", pause_ms=pause_ms)], [CALLER * 480])
    line.bot_media(bot_ms(100))
    ticks = run(line, 150)
    assert line.segments[0].end_ms == 100
    assert caller_start(ticks) == 100 + pause_ms
    speech = [t for t, tick in ticks if tick.audio != SILENCE_FRAME]
    assert len(speech) == 3  # 480 bytes of caller audio: three frames
    assert [e.kind for e in line.events if e.kind.startswith("caller")] == ["caller_speech_start", "caller_speech_end"]


def test_a_speech_step_does_not_start_while_the_bot_keeps_talking() -> None:
    line = PhoneLine([CallerStep(say="hello", pause_ms=0)], [CALLER * 160])
    line.bot_media(bot_ms(2000))
    assert caller_start(run(line, 100)) is None  # the first 2000 ms
    start = caller_start(run(line, 20))
    assert start is not None and start >= 2000


def test_a_speech_step_with_no_bot_reply_starts_after_the_reply_timeout() -> None:
    line = PhoneLine([CallerStep(say="hello?")], [CALLER * 160])
    assert caller_start(run(line, REPLY_TIMEOUT_MS // FRAME_MS + 5, waited_wall_s=0.0)) is None
    assert caller_start(run(line, 5)) == REPLY_TIMEOUT_MS + 5 * FRAME_MS


def test_steps_run_in_order_each_after_the_bot_replies() -> None:
    steps = [CallerStep(say="one", pause_ms=200), CallerStep(say="two", pause_ms=200)]
    line = PhoneLine(steps, [CALLER * 320, CALLER * 320])
    line.bot_media(bot_ms(100))
    run(line, 30)  # "one" starts at 300 and ends at 340
    line.bot_media(bot_ms(100))  # the bot answers at 600
    run(line, 50)
    starts = [e.t_ms for e in line.events if e.kind == "caller_speech_start"]
    assert starts == [300, 600 + 100 + 200]


@pytest.mark.parametrize(("bot_starts_ms", "barge_in_ms"), [(0, 600), (200, 600), (0, 0), (300, 1000)])
def test_a_barge_in_step_starts_that_far_into_the_bot_segment(bot_starts_ms: int, barge_in_ms: int) -> None:
    line = PhoneLine([CallerStep(say="operator", barge_in_ms=barge_in_ms)], [CALLER * 480])
    run(line, bot_starts_ms // FRAME_MS)
    line.bot_media(bot_ms(6000))
    ticks = run(line, 200)
    assert caller_start(ticks) == bot_starts_ms + barge_in_ms
    assert line.bot_speaking  # the bot was not cut; the line only plays what it is told


def test_a_dtmf_step_yields_all_its_digits_in_one_tick() -> None:
    steps = [
        CallerStep(dtmf="12#", wait_for_bot=False, pause_ms=0),
        CallerStep(hangup=True, wait_for_bot=False, pause_ms=0),
    ]
    line = PhoneLine(steps, [None, None])
    first, second = (tick for _, tick in run(line, 2))
    assert first.dtmf == ["1", "2", "#"]
    assert first.audio == SILENCE_FRAME and not first.hangup
    assert second.dtmf == [] and second.hangup
    assert [e.detail for e in line.events if e.kind == "dtmf"] == [{"digits": "12#"}]


def test_a_hangup_step_sets_hangup_and_finished() -> None:
    line = PhoneLine([CallerStep(hangup=True, wait_for_bot=False, pause_ms=0)], [None])
    assert not line.finished
    [(_, tick)] = run(line, 1)
    assert tick.hangup
    assert line.finished
    assert not line.waiting
    later = [tick for _, tick in run(line, 5)]
    assert not any(t.hangup for t in later)


def test_a_silence_step_sends_silence_for_its_length_then_moves_on() -> None:
    steps = [
        CallerStep(silence_ms=100, wait_for_bot=False, pause_ms=0),
        CallerStep(say="hi", wait_for_bot=False, pause_ms=0),
    ]
    line = PhoneLine(steps, [None, CALLER * 160])
    ticks = run(line, 10)
    assert caller_start(ticks) == 100


def test_the_line_finishes_when_the_script_runs_out() -> None:
    line = PhoneLine([CallerStep(say="hi", wait_for_bot=False, pause_ms=0)], [CALLER * 160])
    run(line, 1)
    assert not line.finished
    run(line, 1)
    assert line.finished


# --- properties ----------------------------------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("media"), st.integers(1, 1000)),
        st.tuples(st.just("mark"), st.integers(0, 0)),
        st.tuples(st.just("clear"), st.integers(0, 0)),
        st.tuples(st.just("tick"), st.integers(1, 8)),
    ),
    max_size=40,
)


@given(operations)
def test_heard_grows_by_exactly_160_bytes_per_tick_and_every_mark_is_echoed_once_in_order(
    ops: list[tuple[str, int]],
) -> None:
    line = idle_line()
    ticks = 0
    sent: list[str] = []
    echoed: list[str] = []
    for op, n in ops:
        if op == "media":
            line.bot_media(BOT * n)
        elif op == "mark":
            sent.append(f"m{len(sent)}")
            line.bot_mark(sent[-1])
        elif op == "clear":
            line.bot_clear()
        else:
            for _ in range(n):
                echoed += line.tick().marks
                ticks += 1
                assert len(line.heard) == ULAW_FRAME_BYTES * ticks
    for _ in range(len(line._buffer) // ULAW_FRAME_BYTES + 2):  # drain what is left
        echoed += line.tick().marks
    assert echoed == sent


@given(st.lists(st.binary(min_size=1, max_size=700).map(lambda b: b.replace(b"\xff", b"\x7f")), max_size=10))
def test_the_caller_hears_every_bot_byte_in_order(chunks: list[bytes]) -> None:
    line = idle_line()
    for chunk in chunks:
        line.bot_media(chunk)
        line.tick()
    sent = b"".join(chunks)
    run(line, len(sent) // ULAW_FRAME_BYTES + 1)
    assert bytes(line.heard).replace(b"\xff", b"") == sent
