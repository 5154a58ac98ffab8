"""The turn-latency benchmark still collects from a real replayed call (one call at speed 10; no timing asserted)."""

from __future__ import annotations

from pathlib import Path

from bench.turn_latency import collect
from telephony.server.settings import Settings

SCENARIO = Path(__file__).resolve().parents[2] / "audio_fixtures" / "scenarios" / "talk_to_a_person.yaml"


async def test_one_replay_yields_turn_latencies_that_include_the_silence_window(tmp_path: Path) -> None:
    settings = Settings(tts_cache_dir=tmp_path / "tts", _env_file=None)  # type: ignore[call-arg]

    collection = await collect([SCENARIO], repeat=1, speed=10.0, settings=settings)

    assert collection.samples, "the replayed call measured no caller turn"
    for sample in collection.samples:
        assert sample.after_window_ms >= 0
        assert sample.total_ms >= settings.end_of_speech_ms  # the default 600 ms window is part of every wait
    assert [call.turns for call in collection.calls] == [len(collection.samples)]
