"""The app on a real loopback socket, for the server's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from telephony.replay.in_process import serve_in_process
from telephony.server.app import create_app
from telephony.server.services import Services
from tests.telephony.server.harness import make_services


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Services]]:
    services = make_services()
    async with serve_in_process(create_app(services)) as base:
        yield base, services
