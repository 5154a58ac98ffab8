"""A failing help desk and a hanging one: the package is kept and sent again until it lands, and a help desk
that never answers does not hold up a shutdown (what was in flight is sent at the next start)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from telephony.replay.in_process import serve_in_process
from tests.faults.conftest import running
from tests.telephony.server.harness import Receiver

SCENARIO = "talk_to_a_person.yaml"


async def test_a_failing_help_desk_gets_the_package_once_it_recovers(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    hook, hook_url = receiver
    hook.failing = True
    async with running(tmp_path / "data", hook_url) as server:
        result = await server.replay(SCENARIO, tmp_path / "tts")
        deliverer = server.services.deliverer
        assert deliverer is not None
        await deliverer.drain()
        (kept,) = await server.get("/api/deliveries?status=failed")  # every attempt failed: kept, not lost
        assert kept["handoff_id"].startswith(result.call_sid) and kept["attempts"] >= 2
        hook.failing = False
        await server.services.upkeep.round()  # the background round re-sends failed deliveries
        (delivered,) = await server.get("/api/deliveries?status=delivered")
    assert delivered["delivery_id"] == kept["delivery_id"]  # the same delivery, not a duplicate
    assert hook.received[-1]["ok"] and hook.received[-1]["id"] == kept["delivery_id"]


class Hanging:
    """A help desk that takes requests and never answers, until it is told to."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.seen = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> JSONResponse:
            await request.body()
            self.seen += 1
            await self.answer.wait()
            return JSONResponse({})

        return app


@pytest.fixture
async def hanging() -> AsyncIterator[tuple[Hanging, str]]:
    desk = Hanging()
    async with serve_in_process(desk.app()) as base:
        yield desk, base + "/hook"
        desk.answer.set()


async def test_a_hanging_help_desk_does_not_hold_up_a_shutdown_and_is_sent_at_the_next_start(
    tmp_path: Path, hanging: tuple[Hanging, str]
) -> None:
    desk, hang_url = hanging
    data = tmp_path / "data"
    async with running(data, hang_url) as server:
        await server.replay(SCENARIO, tmp_path / "tts")
        for _ in range(100):
            if desk.seen:
                break
            await asyncio.sleep(0.05)
        assert desk.seen  # the delivery is in flight, and the help desk is not answering
        started = time.perf_counter()
        await server.services.aclose()
        assert time.perf_counter() - started < 5.0
    desk.answer.set()  # the help desk answers again by the time the server restarts
    async with running(data, hang_url) as again:
        await again.services.upkeep.start()
        deliveries = await again.get("/api/deliveries?status=delivered")
    assert len(deliveries) == 1 and desk.seen >= 2  # the package left unsent at shutdown went out at the start
