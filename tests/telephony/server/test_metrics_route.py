"""`GET /metrics` on a real FastAPI app: Prometheus text behind the JSON API's bearer token."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST

from telephony.calls.metrics import Metrics
from telephony.server import metrics_route
from telephony.server.auth import ApiTokenCheck
from tests.faults.conftest import running
from tests.telephony.server.harness import HEADERS

TOKEN = "metrics-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def app_with(token: str, metrics: Metrics | None) -> FastAPI:
    """An app holding just what the route reads from the server's services: the API token and the metrics."""
    app = FastAPI()
    services = SimpleNamespace(api_token=ApiTokenCheck(token))
    if metrics is not None:
        services.metrics = metrics
    app.state.services = services
    app.include_router(metrics_route.router)
    return app


async def get(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get("/metrics", headers=headers)


async def test_the_series_are_served_as_prometheus_text_with_the_token() -> None:
    metrics = Metrics()
    metrics.call_started()
    metrics.dial_outcome("bridged")
    response = await get(app_with(TOKEN, metrics), BEARER)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "handoff_calls_active 1.0" in response.text
    assert 'handoff_dial_outcomes_total{outcome="bridged"} 1.0' in response.text
    assert "# TYPE handoff_time_to_human_seconds histogram" in response.text


async def test_without_the_token_or_with_a_wrong_one_it_is_401() -> None:
    app = app_with(TOKEN, Metrics())
    assert (await get(app)).status_code == 401
    assert (await get(app, {"Authorization": "Bearer nope"})).status_code == 401


async def test_with_no_api_token_configured_it_is_disabled_like_the_api() -> None:
    assert (await get(app_with("", Metrics()), BEARER)).status_code == 503


async def test_a_replayed_call_shows_in_the_series_without_its_sid_or_number(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        result = await server.replay("reject_whisper_next_target.yaml", tmp_path / "tts")
        assert result.handoff is not None
        async with httpx.AsyncClient(base_url=server.base) as http:
            response = await http.get("/metrics", headers=HEADERS)
    text = response.text
    reason = result.handoff["reason"]
    assert response.status_code == 200
    assert f'category="{reason["category"]}"' in text and f'trigger="{reason["trigger"]}"' in text
    assert 'handoff_dial_outcomes_total{outcome="declined"} 1.0' in text
    assert 'handoff_dial_outcomes_total{outcome="bridged"} 1.0' in text
    assert "handoff_time_to_human_seconds_count 1.0" in text
    assert "handoff_calls_active 0.0" in text
    turns = sum(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith("handoff_turn_latency_seconds_count"))  # fmt: skip
    assert turns == len(result.latencies) > 0
    assert result.call_sid not in text and "+1555" not in text
