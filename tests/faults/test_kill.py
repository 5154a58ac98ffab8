"""kill -9, and a restart on the same data folder: whatever the caller had said is on disk, and the restarted
server hands the caller on with it when Twilio asks `<Connect action>` (issue 11, items 3 and 2).

`handoff serve` runs as a real subprocess (oracle ASR, so no model is needed); the call is played over real
HTTP and websockets by the replay harness; the process is killed with SIGKILL at a chosen point of the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from telephony.replay.player import ReplayOptions, TwilioPlayer, caller_audio
from telephony.replay.scenario import Scenario
from telephony.replay.wires import NetworkWire
from telephony.twilio.signatures import TwilioSignatureCheck
from tests.faults.conftest import WEBHOOK_DEADLINE_S
from tests.telephony.conftest import FixedSynthesizer
from tests.telephony.server.harness import API, AUTH, HEADERS

ROOT = Path(__file__).resolve().parents[2]
SIGNER = TwilioSignatureCheck(AUTH)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path, name: str, timeout_s: float) -> None:
    """Until `/healthz` answers 200. Start-up synthesises every fixed prompt into the (shared) cache: slow only
    the first time. A process that dies or never answers fails the test with the end of its log."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{name} did not come up:\n" + log.read_text()[-3000:])
        time.sleep(0.1)


class ServerProcess:
    """`handoff serve` in its own process, on loopback, with a data folder the test chooses."""

    def __init__(self, data_dir: Path, tts_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
        env.update({
            "HANDOFF_PORT": str(self.port), "HANDOFF_ASR": "oracle", "HANDOFF_TWILIO_AUTH_TOKEN": AUTH,
            "HANDOFF_API_TOKEN": API, "HANDOFF_TTS_CACHE_DIR": str(tts_dir), "HANDOFF_DATA_DIR": str(data_dir),
            "HANDOFF_FIXED_NOW": "2026-11-24T15:00:00Z", "HANDOFF_REST_TRANSFERS": "false",
            "PYTHONPATH": str(ROOT),
        })  # fmt: skip
        self.log = data_dir.parent / f"server-{self.port}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "telephony.cli", "serve"], env=env, cwd=data_dir.parent,
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_up(self, timeout_s: float = 180) -> None:
        """Start-up synthesises every fixed prompt into the (shared) cache: slow only the first time."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the server did not come up:\n" + self.log.read_text()[-3000:])
            time.sleep(0.1)

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log_file.close()


@pytest.fixture(scope="module")
def tts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tts")


@pytest.fixture
def servers(tmp_path: Path, tts_dir: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[ServerProcess], data_dir: Path, tts_dir: Path) -> ServerProcess:
    server = ServerProcess(data_dir, tts_dir)
    servers.append(server)
    server.wait_up()
    return server


async def live_call(base: str, call_sid: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base}/api/calls/{call_sid}", headers=HEADERS, timeout=2)
    return response.json() if response.status_code == 200 else {}


async def until(base: str, call_sid: str, reached: Any, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while not reached(await live_call(base, call_sid)):  # noqa: ASYNC110 - another process: only polling
            await asyncio.sleep(0.02)


async def signed(base: str, path: str, form: dict[str, str]) -> httpx.Response:
    url = base + path
    async with httpx.AsyncClient() as http:
        return await http.post(url, data=form, headers={"X-Twilio-Signature": SIGNER.sign(url, form)}, timeout=15)


def caller_turns(record: dict[str, Any]) -> list[str]:
    return [t["text"] for t in record.get("turns") or [] if t.get("speaker") == "caller"]


CALLS = {
    # killed once the caller's first sentence is heard, before anything is decided
    "before the decision": (
        ["My order from last week never arrived and I'm getting worried about it."],
        lambda record: bool(caller_turns(record)),
    ),
    # killed once the dialog has decided to hand the caller to billing, before Twilio asks <Connect action>
    "after the decision": (
        ["I want to talk to a person about a double charge on my bill."],
        lambda record: bool(record.get("decision")),
    ),
}


@pytest.mark.parametrize("point", list(CALLS))
async def test_kill_9_loses_nothing_the_caller_said(
    servers: list[ServerProcess], tmp_path: Path, tts_dir: Path, point: str
) -> None:
    sentences, reached = CALLS[point]
    data_dir = tmp_path / "data"
    first = start(servers, data_dir, tts_dir)
    call_sid = "CA" + "7" * 32
    steps: list[dict[str, object]] = [{"say": s} for s in sentences] + [{"silence_ms": 60000}, {"hangup": True}]
    scenario = Scenario.model_validate({"name": "kill", "call": {"from": "+15551230007"}, "caller": steps})
    player = TwilioPlayer(
        NetworkWire(first.base, speed=3.0), auth_token=AUTH, api_token=API, options=ReplayOptions(clock="wall")
    )
    audio = await caller_audio(scenario, FixedSynthesizer(1500).synthesize)
    playing = asyncio.create_task(player.stream_only(scenario, audio, call_sid))
    await until(first.base, call_sid, reached)
    first.kill9()
    with contextlib.suppress(Exception):  # the socket died with the server: the harness may say so
        await asyncio.wait_for(playing, 10)

    second = start(servers, data_dir, tts_dir)
    form = {**player._call_params(scenario, call_sid), "CallStatus": "in-progress"}
    started = time.perf_counter()
    answer = await signed(second.base, f"/twilio/stream-ended?call={call_sid}", form)
    assert time.perf_counter() - started < WEBHOOK_DEADLINE_S
    assert answer.status_code == 200 and ("<Dial" in answer.text or "<Enqueue" in answer.text), answer.text

    stored = await live_call(second.base, call_sid)
    assert stored.get("stored", True) is not False
    assert sentences[0] in " ".join(t["text"] for t in stored["transcript"] if t["speaker"] == "caller")
    leg = {**form, "CallSid": "CA" + "8" * 32, "ParentCallSid": call_sid}
    whisper = await signed(second.base, f"/twilio/whisper?call={call_sid}&attempt=0", leg)
    assert whisper.status_code == 200
    assert "Unknown" not in whisper.text and ("order" in whisper.text.lower() or "bill" in whisper.text.lower())
