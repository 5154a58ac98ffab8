"""How many Twilio ``media`` messages one core turns into VAD decisions a second: the per-frame inbound path.

Every call sends 50 messages a second, and each goes through ``MediaStreamProtocol.receive`` (JSON, checks,
base64), ``UlawDecoder.decode`` (μ-law to PCM16) and ``EndpointDetector.feed`` (webrtcvad and endpointing)
before anything else happens. This measures that path, stage by stage, so a change to
``telephony/twilio/protocol.py``, ``voice/codec.py`` or ``voice/vad.py`` can be measured before and after
(STYLE.md section 7), and so our figure can be set beside Pipecat's Twilio serializer on the same core.

Run it from the repository root in the project's environment, pinned to one core::

    taskset -c 0 python bench/media_path.py                 # 5 runs of >= 2 s per stage
    taskset -c 0 python bench/media_path.py --seconds 3 --runs 7 --json /tmp/after.json

The messages are built before any timing: 20 ms frames of espeak-ng speech (a numpy stand-in when
espeak-ng is missing) and a pause, over line noise, as compact JSON in the shape of Twilio's captures. Each
timed pass is one five-minute call on a fresh protocol, decoder and detector; passes repeat until a run has
``--seconds`` of timed loop. Garbage collection stays on, as in the server. bench/README.md says how to
compare the figures with Pipecat's.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # this checkout's code, not whichever one is installed (comparing builds)
    sys.path.insert(0, str(REPO_ROOT))

from telephony.twilio.protocol import MediaReceived, MediaStreamProtocol, Started  # noqa: E402
from voice.codec import FRAME_MS, SAMPLE_RATE, ULAW_FRAME_BYTES, UlawDecoder, pcm16_to_ulaw, resample_pcm16  # noqa: E402
from voice.vad import EndpointDetector, VadConfig  # noqa: E402
from voice.wavfile import read_pcm16_wav  # noqa: E402

FRAMES_PER_SECOND_PER_CALL = 1000 // FRAME_MS  # Twilio sends one 20 ms frame per message
TARGET_FRAMES_PER_SECOND = 100_000  # 2,000 concurrent calls' worth of inbound audio on one core
CALL_FRAMES = 15_000  # one timed pass: a five-minute call, so counters reach realistic widths
SPEECH_TEXT = "Hi, I'd like to talk to someone about my bill."
PAUSE_MS = 800  # after each utterance: long enough for the 600 ms end-of-speech window to close it
LINE_NOISE_RMS = 30.0  # about -60 dBFS of hiss under everything; a real line is never digital silence

DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "media_path.json"
HOT_PATH_FILES = ("telephony/twilio/protocol.py", "voice/codec.py", "voice/vad.py")

# Twilio's SID shapes (34 characters); the values are made up.
STREAM_SID = "MZ" + "5f0c4d2b8e7a41c69d03b7e2a1f48c90"
CALL_SID = "CA" + "a1b2c3d4e5f60718293a4b5c6d7e8f90"
ACCOUNT_SID = "AC" + "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CONNECTED_TEXT = '{"event":"connected","protocol":"Call","version":"1.0.0"}'
START_TEXT = orjson.dumps(
    {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT_SID,
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1},
            "customParameters": {},
        },
        "streamSid": STREAM_SID,
    }
).decode()


class Stage(StrEnum):
    """How much of the path a pass runs; each includes the ones before it."""

    PARSE = "parse"
    DECODE = "parse+decode"
    VAD = "parse+decode+VAD"


@dataclass(frozen=True, slots=True)
class CallAudio:
    """What the caller says, as 8 kHz μ-law whose length is a whole number of 20 ms frames."""

    ulaw: bytes
    source: str  # how it was made, for the report


@dataclass(frozen=True, slots=True)
class PassResult:
    """One timed pass over a list of messages (or several passes, summed)."""

    stage: Stage
    frames: int  # MediaReceived events the protocol returned
    seconds: float  # time inside the timed loop only
    voiced_frames: int  # frames webrtcvad called speech (0 unless the stage runs VAD)
    vad_events: int  # SpeechStarted and SpeechEnded returned by the detector

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds


@dataclass(frozen=True, slots=True)
class StageSummary:
    """Every run of one stage, and what the best and median run mean in calls per core."""

    stage: str
    runs_frames_per_s: list[float]
    best_frames_per_s: float
    median_frames_per_s: float
    median_us_per_frame: float
    best_calls_per_core: float
    median_calls_per_core: float


# --- audio and messages (built once, before any timing) ---------------------------------------------------


def speech_audio(prefer_espeak: bool = True) -> CallAudio:
    """About 3 s of speech, then a pause, over line noise: espeak-ng when installed, else a numpy stand-in."""
    espeak = shutil.which("espeak-ng") if prefer_espeak else None
    if espeak is not None:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            subprocess.run([espeak, "-w", str(wav), SPEECH_TEXT], check=True, timeout=60, capture_output=True)
            pcm, rate = read_pcm16_wav(wav)
        speech = np.frombuffer(resample_pcm16(pcm, rate, SAMPLE_RATE), dtype="<i2")
        source = f"espeak-ng: {SPEECH_TEXT!r}"
    else:
        speech = _voiced_stand_in()
        source = "numpy stand-in: harmonic syllables and pauses (espeak-ng not used)"
    pause = PAUSE_MS * SAMPLE_RATE // 1000
    length = len(speech) + pause + -(len(speech) + pause) % ULAW_FRAME_BYTES
    samples = np.random.default_rng(1).normal(0.0, LINE_NOISE_RMS, length)  # deterministic hiss
    samples[: len(speech)] += speech
    pcm = np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()
    ulaw = pcm16_to_ulaw(pcm)
    seconds = len(ulaw) / SAMPLE_RATE
    return CallAudio(ulaw, f"{source}, a {PAUSE_MS} ms pause, line noise throughout; {seconds:.2f} s")


def _voiced_stand_in() -> npt.NDArray[np.int16]:
    """Speech-like audio: 3 s of harmonic 'syllables' with a gliding pitch, between short pauses."""
    rate = SAMPLE_RATE
    parts: list[npt.NDArray[np.int16]] = []
    syllables_and_pauses_ms = [(420, 120), (300, 90), (520, 250), (380, 110), (460, 350)]
    for index, (syllable_ms, pause_ms) in enumerate(syllables_and_pauses_ms):
        t = np.arange(syllable_ms * rate // 1000) / rate
        f0 = 120.0 + 15.0 * index + 40.0 * t / t[-1]  # a rising pitch, as in a stressed syllable
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voiced = np.zeros_like(t)
        for k in range(1, 8):  # falling harmonics, roughly a glottal source
            voiced += np.sin(k * phase) / k
        envelope = np.sqrt(np.sin(np.pi * t / t[-1]).clip(0.0))
        parts.append(np.rint(6000.0 * envelope * voiced).astype(np.int16))
        parts.append(np.zeros(pause_ms * rate // 1000, dtype=np.int16))
    return np.concatenate(parts)


def media_messages(audio: CallAudio, frames: int) -> list[str]:
    """``frames`` inbound ``media`` messages for one call, cycling through the audio in 20 ms frames.

    The shape, key order and first timestamp follow Twilio's connect-basic capture (compact JSON); sequence
    numbers continue from the ``start`` message's "1".
    """
    cycle = [
        base64.b64encode(audio.ulaw[i : i + ULAW_FRAME_BYTES]).decode("ascii")
        for i in range(0, len(audio.ulaw), ULAW_FRAME_BYTES)
    ]
    return [
        orjson.dumps(
            {
                "event": "media",
                "sequenceNumber": str(index + 2),
                "media": {
                    "track": "inbound",
                    "chunk": str(index + 1),
                    "timestamp": str(52 + index * FRAME_MS),
                    "payload": cycle[index % len(cycle)],
                },
                "streamSid": STREAM_SID,
            }
        ).decode()
        for index in range(frames)
    ]


# --- the timed loops --------------------------------------------------------------------------------------


def open_stream() -> MediaStreamProtocol:
    """A protocol past ``connected`` and ``start``, ready for media (done outside the timed loop)."""
    protocol = MediaStreamProtocol()
    protocol.receive(CONNECTED_TEXT)
    started = protocol.receive(START_TEXT)
    if not isinstance(started, Started):
        raise RuntimeError(f"the benchmark's start message was refused: {started}")
    return protocol


def run_pass(messages: Sequence[str], stage: Stage) -> PassResult:
    """Feed one call's messages through ``stage`` on fresh objects; only the message loop is timed."""
    protocol = open_stream()
    if stage is Stage.PARSE:
        frames, seconds = _parse_loop(protocol, messages)
        return PassResult(stage, frames, seconds, 0, 0)
    decoder = UlawDecoder()
    if stage is Stage.DECODE:
        frames, seconds = _decode_loop(protocol, decoder, messages)
        return PassResult(stage, frames, seconds, 0, 0)
    detector = EndpointDetector(VadConfig())
    frames, seconds, voiced, events = _vad_loop(protocol, decoder, detector, messages)
    return PassResult(stage, frames, seconds, voiced, events)


# The three loops are separate functions rather than one with per-frame stage checks, so each times only
# its own work. Each does what the session does with an event: check its type, use its fields.


def _parse_loop(protocol: MediaStreamProtocol, messages: Sequence[str]) -> tuple[int, float]:
    receive = protocol.receive
    frames = 0
    start = time.perf_counter()
    for text in messages:
        event = receive(text)
        if type(event) is MediaReceived:
            frames += 1
    return frames, time.perf_counter() - start


def _decode_loop(protocol: MediaStreamProtocol, decoder: UlawDecoder, messages: Sequence[str]) -> tuple[int, float]:
    receive = protocol.receive
    decode = decoder.decode
    frames = 0
    start = time.perf_counter()
    for text in messages:
        event = receive(text)
        if type(event) is MediaReceived:
            decode(event.payload)
            frames += 1
    return frames, time.perf_counter() - start


def _vad_loop(
    protocol: MediaStreamProtocol,
    decoder: UlawDecoder,
    detector: EndpointDetector,
    messages: Sequence[str],
) -> tuple[int, float, int, int]:
    receive = protocol.receive
    decode = decoder.decode
    feed = detector.feed
    frames = voiced = events = 0
    start = time.perf_counter()
    for text in messages:
        event = receive(text)
        if type(event) is MediaReceived:
            if feed(decode(event.payload), event.timestamp_ms) is not None:
                events += 1
            voiced += detector.last_voiced  # the session reads it for barge-in
            frames += 1
    return frames, time.perf_counter() - start, voiced, events


def measure(messages: Sequence[str], stage: Stage, min_seconds: float) -> PassResult:
    """Repeat passes over ``messages`` until at least ``min_seconds`` of timed loop; the sums of them all."""
    frames = voiced = events = 0
    seconds = 0.0
    while seconds < min_seconds:
        one = run_pass(messages, stage)
        if one.frames != len(messages):
            raise RuntimeError(f"{stage}: {len(messages) - one.frames} of {len(messages)} messages refused")
        frames += one.frames
        seconds += one.seconds
        voiced += one.voiced_frames
        events += one.vad_events
    return PassResult(stage, frames, seconds, voiced, events)


def summarize(stage: Stage, runs: Sequence[PassResult]) -> StageSummary:
    rates = [run.frames_per_second for run in runs]
    best, median = max(rates), statistics.median(rates)
    return StageSummary(
        stage=stage.value,
        runs_frames_per_s=[round(rate) for rate in rates],
        best_frames_per_s=round(best),
        median_frames_per_s=round(median),
        median_us_per_frame=round(1e6 / median, 3),
        best_calls_per_core=round(best / FRAMES_PER_SECOND_PER_CALL, 1),
        median_calls_per_core=round(median / FRAMES_PER_SECOND_PER_CALL, 1),
    )


# --- report -----------------------------------------------------------------------------------------------


def environment() -> dict[str, object]:
    """What a reader needs to judge the numbers: interpreter, CPU, pinning, library versions, code version."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpus_allowed": affinity,
        "pinned_to_one_core": len(affinity) == 1,
        "versions": {name: _version(name) for name in ("numpy", "orjson", "webrtcvad-wheels", "pydantic")},
        "git_commit": _git("rev-parse", "HEAD"),
        "hot_path_files_changed_since_commit": _hot_path_changes(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _hot_path_changes() -> list[str] | None:
    """Hot-path files whose working copy differs from the commit (the figures are for the working tree)."""
    changed = _git("diff", "--name-only", "HEAD", "--", *HOT_PATH_FILES)
    return None if changed is None else changed.split()


def _git(*args: str) -> str | None:
    """Output of a read-only git command, or None when git is missing or fails."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def print_report(console: Console, summaries: Sequence[StageSummary]) -> None:
    table = Table(title="Inbound media path on one core; a call is 50 frames/s")
    table.add_column("stage", no_wrap=True)
    headings = (
        "frames/s\nbest",
        "frames/s\nmedian",
        "µs/frame\nmedian",
        "step\nµs",
        "calls\nbest",
        "calls\nmedian",
    )
    for heading in headings:
        table.add_column(heading, justify="right")
    previous_us = 0.0
    for summary in summaries:
        step_us = summary.median_us_per_frame - previous_us
        previous_us = summary.median_us_per_frame
        table.add_row(
            summary.stage,
            f"{summary.best_frames_per_s:,.0f}",
            f"{summary.median_frames_per_s:,.0f}",
            f"{summary.median_us_per_frame:.2f}",
            f"{step_us:+.2f}",
            f"{summary.best_calls_per_core:,.0f}",
            f"{summary.median_calls_per_core:,.0f}",
        )
    console.print(table)
    full = summaries[-1]
    met = full.median_frames_per_s >= TARGET_FRAMES_PER_SECOND
    verdict = "[green]met[/green]" if met else "[red]missed[/red]"
    console.print(
        f"Target {TARGET_FRAMES_PER_SECOND:,} frames/s including VAD (median run): {verdict} "
        f"({full.median_frames_per_s / TARGET_FRAMES_PER_SECOND:.0%} of target)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per stage in each run (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="runs per stage; best and median are reported")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results as JSON")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.runs <= 0:
        parser.error("--seconds and --runs must be positive")

    console = Console()
    env = environment()
    if not env["pinned_to_one_core"]:
        console.print(
            f"[yellow]Not pinned: CPUs {env['cpus_allowed']} allowed. "
            "Run `taskset -c 0 python bench/media_path.py` for figures comparable with the peer.[/yellow]"
        )
    audio = speech_audio()
    messages = media_messages(audio, CALL_FRAMES)
    console.print(
        f"Audio: {audio.source}. {len(messages):,} messages per pass "
        f"(mean {statistics.fmean(len(m) for m in messages):.0f} characters); "
        f"{args.runs} runs of >= {args.seconds:g} s per stage. CPU: {env['cpu']}, Python {env['python']}."
    )

    stages = list(Stage)
    for stage in stages:  # warm-up: first-call costs (imports, caches, page faults) stay out of the runs
        run_pass(messages[:2_000], stage)
    results: dict[Stage, list[PassResult]] = {stage: [] for stage in stages}
    for _ in range(args.runs):
        for stage in stages:  # interleaved, so a slow spell on the machine touches every stage alike
            results[stage].append(measure(messages, stage, args.seconds))
    summaries = [summarize(stage, results[stage]) for stage in stages]
    print_report(console, summaries)

    vad_runs = results[Stage.VAD]
    voiced_share = sum(r.voiced_frames for r in vad_runs) / sum(r.frames for r in vad_runs)
    console.print(f"VAD: {voiced_share:.0%} of frames voiced; {vad_runs[0].vad_events:,} speech events in run 1.")
    report = {
        "benchmark": "bench/media_path.py",
        "path": "MediaStreamProtocol.receive -> UlawDecoder.decode -> EndpointDetector.feed(VadConfig())",
        "target_frames_per_s_with_vad": TARGET_FRAMES_PER_SECOND,
        "frames_per_s_per_call": FRAMES_PER_SECOND_PER_CALL,
        "audio": audio.source,
        "messages_per_pass": len(messages),
        "seconds_per_run": args.seconds,
        "runs": args.runs,
        "voiced_share": round(voiced_share, 3),
        "stages": [asdict(summary) for summary in summaries],
        "environment": env,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    console.print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
