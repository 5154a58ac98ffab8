"""Replays against a fresh server in this process: the real app and services, Twilio's REST API faked on loopback.

On the virtual clock (the default) the app is called through ASGI and each frame waits for the call to
settle; on the wall clock it runs under uvicorn on a loopback port and frames are paced in real time.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from telephony.replay.clock import SimulatedClock
from telephony.replay.errors import ReplayError
from telephony.replay.player import ReplayOptions, TwilioPlayer, caller_audio
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import Scenario
from telephony.replay.twilio_fake import TwilioFake
from telephony.replay.wires import NetworkWire, VirtualWire, Wire
from telephony.server.app import create_app
from telephony.server.frames import uvicorn_config
from telephony.server.services import Services, build_services
from telephony.server.settings import Settings, load_settings
from voice.oracle import OracleRecognizerFactory
from voice.tts import SpeechSynthesizer


@asynccontextmanager
async def serve_in_process(app: Any, *, read_batch: int = 1) -> AsyncIterator[str]:
    """Run `app` with uvicorn on a free loopback port in this event loop; yields its base URL. Media reads are
    not batched unless asked (`read_batch`): a test's message is read as soon as it is sent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn_config(
        app, log_level="warning", lifespan="on",
        timeout_graceful_shutdown=3,  # an open browser (its event stream) must not hold a test's server up
        read_batch=read_batch,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise ReplayError("the in-process server stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def virtual_wire(app: FastAPI, services: Services) -> AsyncIterator[Wire]:
    """The app in this process on the virtual clock, its lifespan (start-up and shutdown) run around it."""

    async def settle(call_sid: str) -> None:
        session = services.streams.get(call_sid)
        if session is not None:
            await session.settle()

    async with app.router.lifespan_context(app):
        yield VirtualWire(app, settle)


@asynccontextmanager
async def network_wire(app: FastAPI, speed: float) -> AsyncIterator[Wire]:
    """The app under uvicorn on a loopback port, paced by the wall clock."""
    async with serve_in_process(app) as base_url:
        yield NetworkWire(base_url, speed)


async def replay_in_process(
    scenario: Scenario,
    options: ReplayOptions,
    *,
    settings: Settings | None = None,
    caller_synthesizer: SpeechSynthesizer | None = None,
) -> ReplayResult:
    """Replay against a fresh server in this process, with Twilio's REST API faked on loopback (so warm transfers
    go through the real twilio client); oracle or vosk ASR, on the virtual or the wall clock."""
    auth_token = secrets.token_hex(16)
    api_token = secrets.token_hex(16)
    base_settings = settings or load_settings()
    own_synth = caller_synthesizer is None
    caller_synth = caller_synthesizer or SpeechSynthesizer(base_settings.tts_cache_dir, rate=165)
    try:
        audio = await caller_audio(scenario, caller_synth.synthesize)
        with tempfile.TemporaryDirectory(prefix="handoff-replay-") as data_dir:
            async with TwilioFake.running(base_settings.twilio_account_sid, auth_token) as fake:
                overrides: dict[str, Any] = {
                    "twilio_auth_token": SecretStr(auth_token),
                    "api_token": SecretStr(api_token),
                    "asr": options.asr,
                    "twilio_api_base_url": fake.base_url,
                    "fixed_now": scenario.at,
                    "rest_transfers": scenario.rest_transfers,
                    "transfer_mode": scenario.transfer_mode,
                }
                if base_settings.database_url is None:
                    overrides["data_dir"] = Path(data_dir)
                run_settings = base_settings.model_copy(update=overrides)
                recognizers = (
                    OracleRecognizerFactory(options.wer or 0.0, options.seed or 0) if options.asr == "oracle" else None
                )
                clock = SimulatedClock(scenario.at)
                services = build_services(run_settings, recognizers=recognizers, clock=clock)
                app = create_app(services)
                wire: AbstractAsyncContextManager[Wire] = (
                    virtual_wire(app, services) if options.clock == "virtual" else network_wire(app, options.speed)
                )
                async with wire as connected:
                    player = TwilioPlayer(
                        connected, auth_token=auth_token, api_token=api_token, options=options, fake=fake, clock=clock
                    )
                    result = await player.run(scenario, audio)
                result.outcome["rest_requests"] = [
                    {"method": r.method, "path": r.path, "form": dict(r.form)} for r in fake.requests
                ]
                return result
    finally:
        if own_synth:
            caller_synth.close()
