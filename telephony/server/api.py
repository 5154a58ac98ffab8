"""The JSON API (bearer token): calls with everything they left behind, handoffs, callbacks, deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel

from telephony.server.http import require_token, services_of
from telephony.store.analytics import figures

T = TypeVar("T")

CallSid = Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
HandoffId = Annotated[str, Path(min_length=1, max_length=128)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # a row id the database can hold; anything else is a 422
Limit = Annotated[int, Query(ge=1, le=1000)]

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])


class CallbackDone(BaseModel):
    notes: str | None = None


async def stored(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store read or write, off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


@router.get(
    "/calls/{call_sid}",
    summary="A call: transcript, handoff package, routing, dial attempts, callbacks, voicemail, outcome",
)
async def get_call(request: Request, call_sid: CallSid) -> dict[str, Any]:
    services = services_of(request)
    live = services.registry.get(call_sid)  # read only: a GET never writes the call
    row = await stored(services.store.get_call, call_sid)
    if row is None and live is not None:  # live, and not stored yet (the store may be slow or down)
        row = {"call_sid": live.call_sid, "status": live.status, "caller": live.caller, "stored": False}
    if row is None:
        raise HTTPException(status_code=404, detail=f"no call {call_sid}")
    # This process's memory is the call's freshest state only while it streams the call or saved it last; a
    # record another instance saved since (behind a load balancer) is read from the store as it is.
    fresh_here = services.streams.get(call_sid) is not None or row.get("writer") in (None, services.store.writer)
    if live is None or not fresh_here:
        live = await stored(services.store.load_call, call_sid) if row.get("stored", True) else live
    if live is not None:  # the record's own view: latencies, the live outcome, the decision
        row["decision"] = live.decision.model_dump(mode="json") if live.decision else None
        row["latencies"] = [lat.model_dump(mode="json") for lat in live.latencies]
        row["progress"] = live.progress.model_dump(mode="json")
        row["timeline"] = [e.model_dump(mode="json") for e in live.timeline]
        row["turns"] = [t.model_dump(mode="json") for t in live.turns]
        row["prompts_played"] = [p.model_dump(mode="json") for p in live.prompts]
    # Writes of this call still queued for the store (it is slow, or down): the stored fields are behind until 0.
    row["writes_pending"] = services.desk.ledger.outbox.pending_for(call_sid)
    return dict(row)


@router.get("/handoffs", summary="Handoffs, by status and queue")
async def list_handoffs(
    request: Request, status: str | None = None, queue: str | None = None, limit: Limit = 100
) -> list[dict[str, Any]]:
    store = services_of(request).store
    return list(await stored(store.list_handoffs, status=status, queue=queue, limit=limit))


@router.get("/analytics", summary="Handoff analytics for a window of calls (default: the last 7 days)")
async def analytics(
    request: Request,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    queue: str | None = None,
) -> dict[str, Any]:
    now = services_of(request).clock()  # the store stamps calls with this clock
    end = _aware(until) or now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)  # today's end
    start = _aware(since) or end - timedelta(days=7)
    if start >= end:
        raise HTTPException(status_code=422, detail="`from` must be before `to`")
    facts = await stored(services_of(request).store.analytics_facts, start, end, queue)
    return {"from": start.isoformat(), "to": end.isoformat(), "queue": queue, **asdict(figures(facts))}


def _aware(moment: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@router.get("/wrapups", summary="Agents' wrap-ups with their feedback on the summary, newest first")
async def list_wrapups(request: Request, queue: str | None = None, limit: Limit = 100) -> list[dict[str, Any]]:
    return list(await stored(services_of(request).store.list_wrapups, limit, queue))


@router.get("/handoffs/{handoff_id}/wrapup", summary="The wrap-up of one handoff")
async def get_wrapup(request: Request, handoff_id: HandoffId) -> dict[str, Any]:
    row = await stored(services_of(request).store.wrapup, handoff_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no wrap-up for handoff {handoff_id}")
    return dict(row)


@router.get("/callbacks", summary="Callback requests, by status")
async def list_callbacks(request: Request, status: str | None = None, limit: Limit = 100) -> list[dict[str, Any]]:
    return list(await stored(services_of(request).store.list_callbacks, status, limit))


@router.post("/callbacks/{callback_id}/done", summary="Mark a callback done")
async def callback_done(request: Request, callback_id: RowId, body: CallbackDone | None = None) -> dict[str, Any]:
    store = services_of(request).store
    if not await stored(store.mark_callback, callback_id, "done", body.notes if body else None):
        raise HTTPException(status_code=404, detail=f"no callback {callback_id}")
    return {"id": callback_id, "status": "done"}


@router.get("/deliveries", summary="Help-desk deliveries, by status")
async def list_deliveries(request: Request, status: str | None = None, limit: Limit = 100) -> list[dict[str, Any]]:
    return [dict(d) for d in await stored(services_of(request).store.deliveries, status, limit)]


@router.post("/deliveries/{delivery_id}/resend", summary="Send a stored delivery again (same id, fresh signature)")
async def resend_delivery(request: Request, delivery_id: str) -> dict[str, Any]:
    services = services_of(request)
    if services.deliverer is None:
        raise HTTPException(status_code=409, detail="no webhook URLs are configured")
    if await stored(services.store.get_delivery, delivery_id) is None:
        raise HTTPException(status_code=404, detail=f"no delivery {delivery_id}")
    delivered = await services.deliverer.resend(delivery_id)
    return {"delivery_id": delivery_id, "delivered": delivered}
