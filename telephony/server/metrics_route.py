"""`GET /metrics`: the server's Prometheus series, behind the same bearer token as the JSON API.

The series say how many calls are live and how handoffs fare; a scraper sends the token as
`Authorization: Bearer <HANDOFF_API_TOKEN>` (Prometheus: `authorization: {credentials: ...}`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from telephony.calls.metrics import Metrics
from telephony.server.http import require_token, services_of

router = APIRouter(dependencies=[Depends(require_token)])


def metrics_of(request: Request) -> Metrics:
    """The server's `Metrics` (one per process, on its services)."""
    return services_of(request).metrics


@router.get("/metrics", summary="Prometheus metrics: live calls, handoffs, dial outcomes, latencies, failures")
async def metrics(request: Request) -> Response:
    return Response(content=metrics_of(request).exposition(), media_type=CONTENT_TYPE_LATEST)
