"""Playout bookkeeping: prompts are scheduled back to back, a mark's echo marks its prompt played, a barge-in cuts
every pending prompt with how much of each was heard, and a mark that never comes back is released after its
grace period.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.calls.playout import NOTHING_DUE, Playout
from telephony.calls.records import PromptRecord


def start(
    playout: Playout, prompt_id: str, duration_ms: int, now_ms: int, *, interruptible: bool = True
) -> PromptRecord:
    return playout.start(
        prompt_id, f"text of {prompt_id}", duration_ms, now_ms, cached=True, interruptible=interruptible
    )


def test_start_schedules_prompts_back_to_back() -> None:
    playout = Playout()
    first = start(playout, "p1", 1000, now_ms=500)
    second = start(playout, "p2", 800, now_ms=700)  # sent while p1 is still playing
    assert first.play_start_ms == 500
    assert second.play_start_ms == 1500
    assert first.mark != second.mark
    assert playout.pending_count == 2 and playout.speaking


def test_start_after_the_line_went_quiet_begins_now() -> None:
    playout = Playout()
    start(playout, "p1", 1000, now_ms=0)
    assert start(playout, "p2", 500, now_ms=3000).play_start_ms == 3000


def test_echoed_marks_the_prompt_played_with_its_whole_duration_heard() -> None:
    playout = Playout()
    prompt = start(playout, "p1", 1200, now_ms=0)
    assert playout.echoed(prompt.mark) is prompt
    assert prompt.played and not prompt.cut_off
    assert prompt.heard_ms == 1200
    assert not playout.speaking


@pytest.mark.parametrize("mark", ["unknown", "p1#1~i-other", ""])
def test_echoed_returns_none_for_an_unknown_mark(mark: str) -> None:
    playout = Playout()
    start(playout, "p1", 1000, now_ms=0)
    assert playout.echoed(mark) is None
    assert playout.pending_count == 1


def test_echoed_twice_returns_none_the_second_time() -> None:
    playout = Playout()
    prompt = start(playout, "p1", 1000, now_ms=0)
    playout.echoed(prompt.mark)
    assert playout.echoed(prompt.mark) is None


@pytest.mark.parametrize(
    ("onset_ms", "heard", "current"),
    [
        (0, [0, 0, 0], "p1"),  # before anything played
        (400, [400, 0, 0], "p1"),
        (1000, [1000, 0, 0], "p2"),  # p1 just finished: p2 is the one playing
        (1300, [1000, 300, 0], "p2"),
        (2500, [1000, 1000, 500], "p3"),
        (9000, [1000, 1000, 1000], None),  # all of it played, marks not yet back
        (-50, [0, 0, 0], "p1"),  # onset estimated before playback began
    ],
)
def test_interrupt_cuts_every_pending_prompt_with_what_was_heard(
    onset_ms: int, heard: list[int], current: str | None
) -> None:
    playout = Playout()
    prompts = [start(playout, f"p{i}", 1000, now_ms=0) for i in (1, 2, 3)]
    result = playout.interrupt(onset_ms, now_ms=max(onset_ms, 0) + 200)
    assert result.cut == prompts
    assert [p.heard_ms for p in prompts] == heard
    assert all(p.cut_off and not p.played for p in prompts)
    assert (result.current.prompt_id if result.current else None) == current
    assert not playout.speaking


def test_interrupt_only_cuts_prompts_still_pending() -> None:
    playout = Playout()
    first = start(playout, "p1", 1000, now_ms=0)
    second = start(playout, "p2", 1000, now_ms=0)
    playout.echoed(first.mark)
    result = playout.interrupt(1500, now_ms=1600)
    assert result.cut == [second]
    assert result.current is second and second.heard_ms == 500
    assert first.played and not first.cut_off and first.heard_ms == 1000


def test_after_interrupt_the_next_prompt_starts_now() -> None:
    playout = Playout()
    start(playout, "p1", 5000, now_ms=0)
    playout.interrupt(1000, now_ms=1200)
    assert start(playout, "p2", 500, now_ms=1200).play_start_ms == 1200


@given(
    durations=st.lists(st.integers(0, 5000), min_size=1, max_size=6),
    sent_at=st.integers(0, 10_000),
    onset=st.integers(-1000, 40_000),
)
def test_interrupt_heard_is_onset_minus_start_clamped(durations: list[int], sent_at: int, onset: int) -> None:
    playout = Playout()
    prompts = [start(playout, f"p{i}", d, now_ms=sent_at) for i, d in enumerate(durations)]
    result = playout.interrupt(onset, now_ms=onset)
    for prompt in prompts:
        assert prompt.heard_ms == min(max(onset - prompt.play_start_ms, 0), prompt.duration_ms)
    unfinished = [p for p in prompts if (p.heard_ms or 0) < p.duration_ms]
    assert result.current is (unfinished[0] if unfinished else None)


def test_interruptible_is_false_while_a_non_interruptible_prompt_is_pending() -> None:
    playout = Playout()
    assert not playout.interruptible  # nothing playing, nothing to cut
    first = start(playout, "p1", 1000, now_ms=0, interruptible=True)
    assert playout.interruptible
    legal = start(playout, "p2", 1000, now_ms=0, interruptible=False)
    assert not playout.interruptible
    playout.echoed(first.mark)
    assert not playout.interruptible
    playout.echoed(legal.mark)
    assert not playout.interruptible
    start(playout, "p3", 1000, now_ms=2000, interruptible=True)
    assert playout.interruptible


@pytest.mark.parametrize("prompt_id", ["p~n", "p~i", "p#1~n"])
def test_interruptible_does_not_depend_on_the_prompt_id(prompt_id: str) -> None:
    playout = Playout()
    start(playout, prompt_id, 1000, now_ms=0, interruptible=True)
    assert playout.interruptible
    other = Playout()
    start(other, prompt_id, 1000, now_ms=0, interruptible=False)
    assert not other.interruptible


def test_overdue_releases_prompts_only_after_end_plus_grace() -> None:
    playout = Playout(mark_grace_ms=1500)
    first = start(playout, "p1", 1000, now_ms=0)
    second = start(playout, "p2", 1000, now_ms=0)  # everything has played by 2000
    assert playout.overdue(0) == []
    assert playout.overdue(2000) == []
    assert playout.overdue(3499) == []
    assert playout.pending_count == 2
    assert playout.overdue(3500) == [first, second]
    assert first.played and second.played and second.heard_ms == 1000
    assert not playout.speaking
    assert playout.overdue(10_000) == []


def test_overdue_with_nothing_pending_is_empty() -> None:
    assert Playout().overdue(1_000_000) == []


def test_check_at_says_from_when_overdue_can_find_a_prompt_and_follows_every_change() -> None:
    playout = Playout(mark_grace_ms=1500)
    assert playout.check_at_ms == NOTHING_DUE and not playout.interruptible
    first = start(playout, "p1", 1000, now_ms=0)
    assert playout.check_at_ms == 2500 and playout.interruptible
    start(playout, "p2", 1000, now_ms=0)
    assert playout.check_at_ms == 3500
    playout.echoed(first.mark)
    assert playout.check_at_ms == 3500 and playout.interruptible
    playout.interrupt(onset_ms=1200, now_ms=1300)
    assert playout.check_at_ms == NOTHING_DUE and not playout.interruptible
    start(playout, "p3", 500, now_ms=1300, interruptible=False)
    assert playout.check_at_ms == 3300 and not playout.interruptible
    assert playout.overdue(3299) == [] and len(playout.overdue(3300)) == 1
    assert playout.check_at_ms == NOTHING_DUE
