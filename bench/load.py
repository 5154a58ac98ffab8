"""Many concurrent calls against `handoff serve` in another process: how long callers wait, and what a call costs.

The server runs as `handoff serve --asr oracle` (the scripted transcriber: it hears each utterance's reference
text, timed by the real VAD, so this measures everything but speech recognition; `bench/asr_capacity.py`
measures that). Each caller is a lean Twilio stand-in on real HTTP and websockets: it answers the voice
webhook's TwiML, opens the stream with the signed upgrade and the stream ticket, sends a 20 ms media message
every 20 ms of wall time for the whole call (speech, then line noise, as Twilio does), plays the bot's audio
back on a play-out clock, and echoes each mark when the audio before it has played, as Twilio does.

Each caller waits for the greeting to finish, says its sentences with a pause, and hangs up after the last
reply. What it measures:

* **reply latency, client side**: from the moment it sent the frame that closes the end-of-speech window to the
  first frame of the bot's reply reaching it (includes the server's queueing behind other calls, the dialog,
  the prompt, and both loopback hops);
* **reply latency, server side**: each turn's `after_window_ms` from the call record, cached prompts apart;
* **greeting latency**: `start` sent to the first greeting frame received;
* **server CPU**: user+system seconds of the server process over the steady part of the run, per call and per
  inbound media frame (all its work included, not only parsing; the harness's own requests, which no real
  call makes, are not: the oracle scripts are registered before the CPU is measured, and the call records,
  for the server-side latencies, are read after);
* how much of the server's CPU was its event loop's thread, and the kernel's; how often the loop woke a second;
* the load generator's own CPU, and the server's divided by it: a figure that moves less with the machine's
  speed than the µs per frame, as the generator does the same work against every build;
* lost calls: any call that did not hear its greeting and every reply;
* with `--cpu-parts`, the server's CPU by part (socket reads, media messages, dialog, store writes, webhooks...):
  the server times its own functions (`bench/cpu_parts/sitecustomize.py`), which costs CPU of its own.

Run it from the repository root in the project's environment; the target is 100 calls with p95 <= 100 ms::

    python bench/load.py --calls 100
    python bench/load.py --calls 25,50,100 --turns 3 --json /tmp/load.json
    taskset -c 0,1 python bench/load.py --calls 100 --server-cpus 0,1
    taskset -c 1 python bench/load.py --calls 100 --server-cpus 0 --cpu-parts

The load generator shares the machine; its own CPU is reported so the server's share is clear.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from telephony.calls.admission import TICKET_PARAMETER  # noqa: E402
from telephony.twilio.signatures import TwilioSignatureCheck  # noqa: E402
from voice.codec import pcm16_to_ulaw, ulaw_to_pcm16  # noqa: E402
from voice.vad import EndpointDetector, SpeechEnded, VadConfig  # noqa: E402
from voice.wavfile import read_ulaw_wav  # noqa: E402

FIXTURES = REPO_ROOT / "audio_fixtures"
CPU_PARTS_SHIM = REPO_ROOT / "bench" / "cpu_parts"  # the server's sitecustomize under --cpu-parts
REST = "the rest: the event loop itself, the kernel's socket work, timers, other tasks"  # the CPU no part covers
DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "load.json"
AUTH = "bench-auth-token"
API = "bench-api-token"
FRAME_MS = 20
FRAME_BYTES = 160
PAUSE_AFTER_REPLY_MS = (400, 1200)  # a caller answers this long after the bot stops, at random
TURNS = (  # what each caller says (the audio) and what the oracle hears (the text): a self-served call
    ("orders/where_is_order.wav", "Where is my order? The number is 4 8 1 5 2 3."),
    ("appointments/insurance.wav", "What are your opening hours on Saturday?"),
    ("person/ask_for_agent.wav", "No, that's all. Thanks, bye."),
)
# The same kind of self-served call for a server that recognises speech with real vosk: Korean callers of the
# Korean test pack (espeak-ng audio from audio_fixtures/manifest.yaml; the pack's grammar makes vosk exact).
KOREAN_TURNS = (("ko/login.wav", "로그인 이 안 돼요"), ("ko/yes.wav", "네"))
KOREAN_PACK = REPO_ROOT / "tests" / "packs" / "hanbit_ko.yaml"
LINE_NOISE_RMS = 8.0  # a quiet line: webrtcvad hears it as silence
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of one process so far."""
    return sum(_stat_cpu_seconds(Path(f"/proc/{pid}/stat")))


def main_thread_cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process's main thread so far: a server's event loop, where the call path runs
    (the rest of the process is its worker threads: the store's writes, recognition, synthesis)."""
    return sum(_stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat")))


def system_cpu_seconds(pid: int) -> float:
    """System (kernel) CPU of one process so far: its syscalls, and the loopback TCP they drive."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))[1]


def _stat_cpu_seconds(stat: Path) -> tuple[float, float]:
    """User and system CPU seconds from a /proc stat file; zeros for a process that is gone."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def main_thread_sleeps(pid: int) -> int:
    """How often a process's main thread (a server's event loop) has blocked so far: its voluntary context
    switches, each a wait for the next event (or for the GIL) and a wake-up after it."""
    try:
        status = Path(f"/proc/{pid}/task/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("voluntary_ctxt")), 0)


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process and every live process under it (a server's recognition workers)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone while we looked
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu_seconds(member) for member in tree)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def line_noise(frames: int, seed: int) -> list[str]:
    """Quiet line hiss, as base64 payloads: the VAD hears it as silence, but it is not digital zero."""
    rng = np.random.default_rng(seed)
    pcm = np.clip(rng.normal(0.0, LINE_NOISE_RMS, frames * FRAME_BYTES), -32768, 32767).astype("<i2").tobytes()
    ulaw = pcm16_to_ulaw(pcm)
    return [base64.b64encode(ulaw[i : i + FRAME_BYTES]).decode() for i in range(0, len(ulaw), FRAME_BYTES)]


@dataclass(frozen=True)
class Sentence:
    """One thing a caller says: its frames, and how many frames after its first the server's VAD closes it."""

    frames: list[str]
    closes_after: int


def sentence(path: Path, noise: list[str]) -> Sentence:
    """The sentence's frames, and where the project's own VAD closes it when line noise follows (found by
    running the detector over exactly what the caller sends): the moment the caller starts waiting."""
    ulaw = read_ulaw_wav(path)
    ulaw += b"\xff" * (-len(ulaw) % FRAME_BYTES)
    frames = [base64.b64encode(ulaw[i : i + FRAME_BYTES]).decode() for i in range(0, len(ulaw), FRAME_BYTES)]
    lead = 50
    played = [noise[i % len(noise)] for i in range(lead)] + frames + [noise[i % len(noise)] for i in range(200)]
    detector = EndpointDetector(VadConfig())
    for index, payload in enumerate(played):
        event = detector.feed(ulaw_to_pcm16(base64.b64decode(payload)), index * FRAME_MS)
        if isinstance(event, SpeechEnded) and event.start_ms >= lead * FRAME_MS - 200:
            return Sentence(frames, index - lead)  # the frame whose arrival closes it
    raise SystemExit(f"the VAD never closes {path.name}")


# --- the server ---------------------------------------------------------------------------------------------


class ServerProcess:
    """`handoff serve --asr oracle` on loopback, in its own process (optionally pinned to some CPUs)."""

    def __init__(
        self, scratch: Path, tts_dir: Path, cpus: str | None, root: Path = REPO_ROOT,
        extra_env: dict[str, str] | None = None, parts_dir: Path | None = None,
    ) -> None:  # fmt: skip
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
        env.update({
            "HANDOFF_PORT": str(self.port), "HANDOFF_ASR": "oracle", "HANDOFF_TWILIO_AUTH_TOKEN": AUTH,
            "HANDOFF_API_TOKEN": API, "HANDOFF_TTS_CACHE_DIR": str(tts_dir), "HANDOFF_DATA_DIR": str(scratch / "data"),
            "HANDOFF_REST_TRANSFERS": "false", "HANDOFF_LOG_LEVEL": "warning", "PYTHONPATH": str(root),
            **(extra_env or {}),
        })  # fmt: skip
        if parts_dir is not None:  # the server times its parts (bench/cpu_parts/sitecustomize.py)
            env["PYTHONPATH"] = os.pathsep.join([str(root), str(CPU_PARTS_SHIM)])
            env["BENCH_CPU_PARTS_DIR"] = str(parts_dir)
        command = [sys.executable, "-m", "telephony.cli", "serve"]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        self.log = scratch / "server.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(command, env=env, cwd=scratch, stdout=self._log_file, stderr=subprocess.STDOUT)

    async def wait_up(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(self.base + "/healthz", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not come up:\n" + self.log.read_text()[-3000:])
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log_file.close()


class CpuParts:
    """The server's CPU by part, from the timing its sitecustomize adds under `--cpu-parts`."""

    def __init__(self, folder: Path, pid: int) -> None:
        self.folder = folder
        self.pid = pid
        self._taken = 0

    async def armed(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not (self.folder / "armed").exists():
            error = self.folder / "error"
            if error.exists():
                raise SystemExit(f"--cpu-parts: {error.read_text()}")
            if time.monotonic() > deadline:
                waiting = self.folder / "waiting"
                why = f"it never loaded {waiting.read_text()}" if waiting.exists() else "bench/cpu_parts not imported"
                raise SystemExit(f"--cpu-parts: the server's parts were not timed ({why})")
            await asyncio.sleep(0.02)

    async def snapshot(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """The totals so far: the server writes them when signalled."""
        self._taken += 1
        path = self.folder / f"snapshot-{self._taken}.json"
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if time.monotonic() > deadline:
                raise SystemExit("--cpu-parts: the server wrote no snapshot")
            await asyncio.sleep(0.005)
        snapshot: dict[str, Any] = json.loads(path.read_text())
        return snapshot


def cpu_parts(before: dict[str, Any], after: dict[str, Any], server_cpu_s: float) -> list[dict[str, Any]]:
    """Each part's CPU between two snapshots, and what the disjoint parts leave of the server's CPU."""
    rows = []
    for name, totals in after["parts"].items():
        earlier = before["parts"].get(name, {"ns": 0, "calls": 0})
        calls = totals["calls"] - earlier["calls"]
        seconds = (totals["ns"] - earlier["ns"]) / 1e9
        rows.append({"part": name, "top": name in after["top"], "cpu_s": round(seconds, 3), "calls": calls,
                     "us_per_call": round(seconds * 1e6 / calls, 1) if calls else None})  # fmt: skip
    covered = sum(row["cpu_s"] for row in rows if row["top"])
    rest = round(server_cpu_s - covered, 3)
    rows.append({"part": REST, "top": True, "cpu_s": rest, "calls": None, "us_per_call": None})  # fmt: skip
    return sorted(rows, key=lambda row: (not row["top"], -row["cpu_s"]))


# --- one caller ---------------------------------------------------------------------------------------------


@dataclass
class CallResult:
    call_sid: str
    greeting_ms: float | None = None
    replies_ms: list[float] = field(default_factory=list)
    server_turns: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


class Caller:
    """One Twilio call: plays the caller's frames in real time, plays the bot's audio out, echoes marks."""

    def __init__(self, base: str, signer: TwilioSignatureCheck, turns: Sequence[Sentence], texts: Sequence[str],
                 noise: list[str], seed: int) -> None:  # fmt: skip
        self.base = base
        self.signer = signer
        self.turns = turns
        self.texts = texts
        self.noise = noise
        self.rng = random.Random(seed)
        self.call_sid = "CA" + secrets.token_hex(16)
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.result = CallResult(self.call_sid)
        self._seq = 0
        self._chunk = 0
        self._play_end = 0.0  # wall time (perf_counter) when the bot's queued audio has played out
        self._marks: list[tuple[float, str]] = []
        self._waiting_since: float | None = None  # when we closed a window (or sent start) and await audio
        self._heard_since_wait = False
        self._closed = False
        self.ticketed = False
        self.streaming = False  # the media stream is open and the caller is on it

    async def read_record(self, http: httpx.AsyncClient) -> None:
        """The server's own latencies for this call, from its record: read after the run's CPU is measured, as
        this is the load generator asking (2.3 ms of server CPU a read), not work a call gives the server."""
        record = await http.get(f"{self.base}/api/calls/{self.call_sid}", headers={"Authorization": f"Bearer {API}"})
        if record.status_code == 200:
            self.result.server_turns = list(record.json().get("latencies") or [])

    def _message(self, event: str, body: dict[str, Any]) -> str:
        self._seq += 1
        return json.dumps({"event": event, "sequenceNumber": str(self._seq), "streamSid": self.stream_sid, **body})

    def _media(self, payload: str) -> str:
        self._chunk += 1
        self._seq += 1
        return (
            f'{{"event":"media","sequenceNumber":"{self._seq}","streamSid":"{self.stream_sid}","media":'
            f'{{"track":"inbound","chunk":"{self._chunk}","timestamp":"{(self._chunk - 1) * FRAME_MS}",'
            f'"payload":"{payload}"}}}}'
        )

    async def run(self, http: httpx.AsyncClient) -> CallResult:
        try:
            await self._call(http)
        except Exception as exc:  # a lost call is a result to report, not a reason to stop the run
            self.result.error = f"{type(exc).__name__}: {exc}"
        return self.result

    async def register_script(self, http: httpx.AsyncClient) -> None:
        """Tell an oracle server what this caller will say (a vosk server recognises the audio instead): the
        test harness's set-up, done before the run's CPU is measured, as no real call asks it of the server."""
        if self.texts:
            script = {"utterances": [{"text": t, "confidence": 0.95} for t in self.texts]}
            headers = {"Authorization": f"Bearer {API}"}
            oracle = await http.post(f"{self.base}/api/oracle/{self.call_sid}", json=script, headers=headers)
            oracle.raise_for_status()

    async def _call(self, http: httpx.AsyncClient) -> None:
        form = {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": "+15551230000",
                "To": "+15559870000", "CallStatus": "ringing", "Direction": "inbound"}  # fmt: skip
        url = self.base + "/twilio/voice"
        answer = await http.post(url, data=form, headers={"X-Twilio-Signature": self.signer.sign(url, form)})
        answer.raise_for_status()
        stream = ET.fromstring(answer.text).find("Connect/Stream")
        if stream is None:
            raise RuntimeError("no <Connect><Stream> in the answer")
        params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        self.ticketed = TICKET_PARAMETER in params  # servers before the stream tickets issue none
        stream_url = stream.get("url", "")
        upgrade = {"X-Twilio-Signature": self.signer.sign(stream_url)}
        async with websockets.connect(stream_url, additional_headers=upgrade, max_size=2**22) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            start = {"accountSid": "AC" + "0" * 32, "streamSid": self.stream_sid, "callSid": self.call_sid,
                     "tracks": ["inbound"], "customParameters": params,
                     "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}  # fmt: skip
            self._waiting_since = time.perf_counter()
            await ws.send(self._message("start", {"start": start}))
            reader = asyncio.create_task(self._read(ws))
            self.streaming = True
            try:
                await self._talk(ws)
                stop = {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid}
                await ws.send(self._message("stop", {"stop": stop}))
            except websockets.ConnectionClosedOK:
                if len(self.result.replies_ms) < len(self.turns):
                    raise  # closed before the caller was answered: a lost call
                # the bot said goodbye and ended the call while its last words played: a normal end
            finally:
                self._closed = True
                self.streaming = False
                reader.cancel()
        if self.result.greeting_ms is None or len(self.result.replies_ms) < len(self.turns):
            self.result.error = self.result.error or (
                f"heard {len(self.result.replies_ms)} of {len(self.turns)} replies"
                + ("" if self.result.greeting_ms is not None else ", and no greeting")
            )

    async def _read(self, ws: websockets.ClientConnection) -> None:
        async for text in ws:
            now = time.perf_counter()
            message = json.loads(text)
            event = message.get("event")
            if event == "media":
                if self._waiting_since is not None:
                    waited = (now - self._waiting_since) * 1000
                    if self.result.greeting_ms is None:
                        self.result.greeting_ms = waited
                    else:
                        self.result.replies_ms.append(waited)
                    self._waiting_since = None
                audio_s = len(message["media"]["payload"]) * 3 / 4 / 8000
                self._play_end = max(self._play_end, now) + audio_s
            elif event == "mark":
                self._marks.append((max(self._play_end, now), message["mark"]["name"]))
            elif event == "clear":
                self._play_end = now
                self._marks = [(now, name) for _, name in self._marks]

    async def _tick(self, ws: websockets.ClientConnection, payload: str, due: float) -> float:
        """Send one frame at its due time (and any mark whose audio has played); the next frame's due time."""
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        while self._marks and self._marks[0][0] <= now:
            _, name = self._marks.pop(0)
            await ws.send(self._message("mark", {"mark": {"name": name}}))
        await ws.send(self._media(payload))
        return due + FRAME_MS / 1000

    def _bot_quiet(self, now: float) -> bool:
        return self._waiting_since is None and now >= self._play_end and not self._marks

    async def _talk(self, ws: websockets.ClientConnection) -> None:
        due = time.perf_counter()
        noise = 0
        for frames in self.turns:
            quiet_since: float | None = None
            pause = self.rng.uniform(*PAUSE_AFTER_REPLY_MS) / 1000
            deadline = time.perf_counter() + 60
            while True:  # line noise until the bot has spoken and finished, then a human pause
                now = time.perf_counter()
                if self._bot_quiet(now):
                    quiet_since = quiet_since or now
                    if now - quiet_since >= pause:
                        break
                else:
                    quiet_since = None
                if now > deadline:
                    raise TimeoutError("the bot never finished speaking")
                due = await self._tick(ws, self.noise[noise % len(self.noise)], due)
                noise += 1
            for index in range(max(len(frames.frames), frames.closes_after + 1)):
                if index < len(frames.frames):
                    payload = frames.frames[index]
                else:
                    payload, noise = self.noise[noise % len(self.noise)], noise + 1
                due = await self._tick(ws, payload, due)
                if index == frames.closes_after:  # the server's VAD closes the window on this frame
                    self._waiting_since = time.perf_counter()
        deadline = time.perf_counter() + 30
        while not self._bot_quiet(time.perf_counter()) and time.perf_counter() < deadline:
            due = await self._tick(ws, self.noise[noise % len(self.noise)], due)
            noise += 1


# --- a run --------------------------------------------------------------------------------------------------


async def steady_state(pid: int, callers: Sequence[Caller]) -> dict[str, Any]:
    """The server's CPU per inbound frame while every call is live (no call arriving or leaving): the per-frame
    cost with turns, prompts and saves included, and without the per-call HTTP work at the edges."""
    samples: list[tuple[float, float, int]] = []
    try:
        while True:
            await asyncio.sleep(0.5)
            live = sum(1 for c in callers if c.streaming)
            if live == len(callers):
                samples.append((time.perf_counter(), cpu_seconds(pid), sum(c._chunk for c in callers)))
            elif samples:
                break
    except asyncio.CancelledError:
        pass
    if len(samples) < 2 or samples[-1][2] == samples[0][2]:
        return {"seconds": 0.0}
    (t0, cpu0, frames0), (t1, cpu1, frames1) = samples[0], samples[-1]
    return {
        "seconds": round(t1 - t0, 1),
        "server_cores_busy": round((cpu1 - cpu0) / (t1 - t0), 3),
        "server_us_per_inbound_frame": round((cpu1 - cpu0) * 1e6 / (frames1 - frames0), 1),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def vosk_environment(model: str, workers: int = 1, pack: Path = KOREAN_PACK) -> dict[str, str]:
    """What makes `handoff serve` recognise the Korean callers with real vosk instead of the oracle."""
    return {"HANDOFF_ASR": "vosk", "HANDOFF_BOT_PACK": str(pack), "HANDOFF_VOSK_MODEL_PATH": model,
            "HANDOFF_ASR_WORKERS": str(workers)}  # fmt: skip


def free_form_pack(folder: Path) -> Path:
    """The Korean test pack without its sentence grammar: vosk decodes free-form, as for a real caller of a
    pack with no phrase list (it mishears espeak-ng Korean, but it does all of free-form decoding's work)."""
    pack = yaml.safe_load(KOREAN_PACK.read_text(encoding="utf-8"))
    pack.get("recognition", {}).pop("phrases", None)
    path = folder / "hanbit_ko_free_form.yaml"
    path.write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")
    return path


async def run_point(
    base: str, pid: int, calls: int, ramp_s: float, turns: int, seed: int,
    script: Sequence[tuple[str, str]] = TURNS, oracle: bool = True, parts: CpuParts | None = None,
) -> dict[str, Any]:  # fmt: skip
    signer = TwilioSignatureCheck(AUTH)
    chosen = script[:turns]
    noise = line_noise(500, seed)
    frames = [sentence(FIXTURES / wav, noise) for wav, _ in chosen]
    texts = [text for _, text in chosen] if oracle else []
    callers = [Caller(base, signer, frames, texts, noise, seed + i) for i in range(calls)]
    limits = httpx.Limits(max_connections=calls * 2, max_keepalive_connections=calls)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0)) as http:

        async def staggered(index: int, caller: Caller) -> CallResult:
            await asyncio.sleep(ramp_s * index / max(calls, 1))
            return await caller.run(http)

        await asyncio.gather(*(caller.register_script(http) for caller in callers))
        parts_before = await parts.snapshot() if parts is not None else None
        cpu_before, own_before, wall_before = cpu_seconds(pid), time.process_time(), time.perf_counter()
        loop_before, system_before, sleeps_before = (
            main_thread_cpu_seconds(pid),
            system_cpu_seconds(pid),
            main_thread_sleeps(pid),
        )
        monitor = asyncio.create_task(steady_state(pid, callers))
        results = await asyncio.gather(*(staggered(i, c) for i, c in enumerate(callers)))
        cpu_after, own_after, wall_after = cpu_seconds(pid), time.process_time(), time.perf_counter()
        parts_after = await parts.snapshot() if parts is not None else None
        loop_cpu = main_thread_cpu_seconds(pid) - loop_before
        system_cpu, loop_sleeps = system_cpu_seconds(pid) - system_before, main_thread_sleeps(pid) - sleeps_before
        monitor.cancel()
        steady = await asyncio.gather(monitor, return_exceptions=True)
        await asyncio.gather(*(caller.read_record(http) for caller in callers))
    wall = wall_after - wall_before
    frames_sent = sum(c._chunk for c in callers)
    call_seconds = frames_sent * FRAME_MS / 1000
    server_cpu = cpu_after - cpu_before
    replies = [ms for r in results for ms in r.replies_ms]
    greetings = [r.greeting_ms for r in results if r.greeting_ms is not None]
    server = [t for r in results for t in r.server_turns if t.get("after_window_ms") is not None]
    cached = [float(t["after_window_ms"]) for t in server if t.get("cached")]
    uncached = [float(t["after_window_ms"]) for t in server if not t.get("cached")]
    lost = [r for r in results if r.error]
    return {
        "calls": calls,
        "turns_per_call": turns,
        "wall_s": round(wall, 1),
        "lost_calls": len(lost),
        "lost_examples": [r.error for r in lost[:5]],
        "reply_ms_client": {"n": len(replies), "p50": percentile(replies, 50), "p95": percentile(replies, 95),
                            "max": percentile(replies, 100)},
        "reply_ms_server_cached": {"n": len(cached), "p50": percentile(cached, 50), "p95": percentile(cached, 95)},
        "reply_ms_server_uncached": {"n": len(uncached), "p50": percentile(uncached, 50),
                                     "p95": percentile(uncached, 95)},
        "greeting_ms": {"n": len(greetings), "p50": percentile(greetings, 50), "p95": percentile(greetings, 95)},
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_event_loop_s": round(loop_cpu, 2),  # the main thread; the rest is the worker threads'
        "server_cores_busy": round(server_cpu / wall, 2) if wall else None,
        "server_cpu_ms_per_call_second": round(server_cpu * 1000 / call_seconds, 2) if call_seconds else None,
        "server_us_per_inbound_frame": round(server_cpu * 1e6 / frames_sent, 1) if frames_sent else None,
        "server_cpu_system_s": round(system_cpu, 2),  # the kernel's part of server_cpu_s
        "event_loop_wakeups_per_s": round(loop_sleeps / wall) if wall else None,
        "load_generator_cpu_s": round(own_after - own_before, 2),
        # The generator does the same work for every build, on the same machine at the same time: a server CPU
        # figure that moves less with the machine's speed than the µs per frame do (the ratio changes when the
        # server's does, or when a build changes what the generator must read: its audio, its marks).
        "server_cpu_per_load_generator_cpu": (
            round(server_cpu / (own_after - own_before), 3) if own_after > own_before else None
        ),
        "steady_state": steady[0] if isinstance(steady[0], dict) else None,
        "cpu_parts": (
            cpu_parts(parts_before, parts_after, server_cpu) if parts_before is not None and parts_after else None
        ),
    }  # fmt: skip


def environment() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return {
        "python": platform.python_version(),
        "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), platform.processor()),
        "cpus": os.cpu_count(),
        "git_commit": commit.stdout.strip() or None,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip


def print_point(point: dict[str, Any]) -> None:
    client, cached, uncached = (
        point["reply_ms_client"],
        point["reply_ms_server_cached"],
        point["reply_ms_server_uncached"],
    )
    print(
        f"{point['calls']:>4} calls  lost {point['lost_calls']}  "
        f"reply (client) p50 {client['p50']} p95 {client['p95']} max {client['max']} ms (n={client['n']})  "
        f"server cached p50 {cached['p50']} p95 {cached['p95']}; uncached p50 {uncached['p50']} p95 {uncached['p95']} "
        f"(n={uncached['n']})  greeting p50 {point['greeting_ms']['p50']} p95 {point['greeting_ms']['p95']} ms  "
        f"server {point['server_cores_busy']} cores, {point['server_cpu_ms_per_call_second']} ms CPU per call-second, "
        f"{point['server_us_per_inbound_frame']} µs per frame ({point['server_cpu_event_loop_s']} of "
        f"{point['server_cpu_s']} s CPU on the event loop's thread, {point['server_cpu_system_s']} s in the kernel; "
        f"the loop woke {point['event_loop_wakeups_per_s']} times a second); with every call live: "
        f"{point['steady_state']}  (load generator {point['load_generator_cpu_s']} s CPU; server/generator "
        f"{point['server_cpu_per_load_generator_cpu']})"
    )
    for row in point.get("cpu_parts") or ():
        each = f" in {row['calls']} calls, {row['us_per_call']} µs each" if row["calls"] else ""
        print(f"      {row['cpu_s']:7.3f} s  {'' if row['top'] else '  '}{row['part']}{each}")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="handoff-load-"))
    tts_dir = Path(args.tts_cache)
    tts_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any call
    batch = {"HANDOFF_MEDIA_READ_BATCH": str(args.read_batch)} if args.read_batch else None
    parts_dir = scratch / "cpu_parts" if args.cpu_parts else None
    server = ServerProcess(scratch, tts_dir, args.server_cpus, Path(args.server_root), extra_env=batch,
                           parts_dir=parts_dir)  # fmt: skip
    points = []
    try:
        await server.wait_up()
        parts = CpuParts(parts_dir, server.process.pid) if parts_dir is not None else None
        if parts is not None:
            await parts.armed()
        if args.warm:  # one call first, so the prompts the calls need are synthesised and cached
            await run_point(server.base, server.process.pid, 1, 0.0, args.turns, args.seed)
        for calls in [int(c) for c in args.calls.split(",")]:
            point = await run_point(
                server.base, server.process.pid, calls, args.ramp, args.turns, args.seed, parts=parts
            )
            print_point(point)
            points.append(point)
    finally:
        server.stop()
    return {"environment": environment(), "server_root": args.server_root, "server_cpus": args.server_cpus,
            "media_read_batch": args.read_batch, "cpu_parts": args.cpu_parts, "points": points}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="100", help="numbers of concurrent calls to run, one point each")
    parser.add_argument("--turns", type=int, default=len(TURNS), choices=range(1, len(TURNS) + 1))
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the calls arrive")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-cpus", default=None, help="taskset CPU list for the server (default: any)")
    parser.add_argument("--tts-cache", default=str(REPO_ROOT / "bench" / "results" / "tts"), help="prompt cache")
    parser.add_argument(
        "--server-root", default=str(REPO_ROOT), help="the checkout whose server to run (another commit, to compare)"
    )
    parser.add_argument("--no-warm", dest="warm", action="store_false", help="skip the warm-up call")
    parser.add_argument(
        "--read-batch", type=int, default=None, help="the server's HANDOFF_MEDIA_READ_BATCH (default: its own)"
    )
    parser.add_argument(
        "--cpu-parts", action="store_true",
        help="also time the server's parts (socket reads, dialog, store writes, ...): costs CPU, so compare parts "
        "within the run, not its µs per frame with a run without",
    )  # fmt: skip
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where the results go")
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(args))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"results: {out}")
    lost = sum(p["lost_calls"] for p in result["points"])
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
