"""The fault suite: the server under the faults of a bad day, and what must hold whatever happens: every call
stored (once the store can take it), every caller handed on with a summary within Twilio's webhook timeouts,
no raw card numbers, codes or ID numbers anywhere.

Real app, real SQLite file, real websockets and HTTP on loopback; Twilio's REST API is the local fake.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from telephony.replay.in_process import serve_in_process
from telephony.replay.twilio_fake import TwilioFake
from telephony.server.app import create_app
from telephony.server.services import Services, build_services
from tests.telephony.conftest import FixedSynthesizer
from tests.telephony.server.harness import AUTH, SECRET, Receiver, Server, settings_for
from voice.oracle import OracleRecognizerFactory

WEBHOOK_DEADLINE_S = 5.0  # Twilio's connect timeout; every webhook must answer well within it


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    async with serve_in_process(hook.app()) as base:
        yield hook, base + "/hook"


@asynccontextmanager
async def running(data_dir: Path, hook_url: str | None = None, **extra: Any) -> AsyncIterator[Server]:
    """The app on loopback with a store in `data_dir`, Twilio faked, and (optionally) a help desk."""
    async with TwilioFake.running(auth_token=AUTH) as fake:
        if hook_url is not None:
            extra = {"webhook_urls": [hook_url], "webhook_secret": SecretStr(SECRET), **extra}
        settings = settings_for(data_dir, fake, **extra)
        services = build_services(settings, recognizers=OracleRecognizerFactory(), synthesizer=FixedSynthesizer(600))
        if services.deliverer is not None:
            services.deliverer.backoff_initial_s = 0.01
            services.deliverer.backoff_max_s = 0.05
        app = create_app(services)
        async with serve_in_process(app) as base:
            yield Server(base, services, fake, app)


def time_webhooks(services: Services) -> list[tuple[str, float]]:
    """Wrap the desk's webhook handlers to record how long each took to answer."""
    timings: list[tuple[str, float]] = []
    desk = services.desk

    def timed(name: str, handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await handler(*args, **kwargs)
            finally:
                timings.append((name, time.perf_counter() - started))

        return wrapper

    desk.stream_ended = timed("stream_ended", desk.stream_ended)  # type: ignore[method-assign]
    for name in ("whisper", "accept", "dial_status", "enqueue_status"):
        setattr(desk.transfers, name, timed(name, getattr(desk.transfers, name)))
    return timings
