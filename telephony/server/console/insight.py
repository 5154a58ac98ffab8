"""The supervisor's console pages for the review cycle: handoff analytics with charts, and review (a sample of
recent handoffs across the top escalation categories, a verdict on each, and the review report).

Supervisors only. Windows are read from `from`/`to` (ISO dates; `to` defaults to now, `from` to 30 days
before); a window that cannot be read is a 422 page that says why, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from telephony.desk.review import dead_ends, review_report
from telephony.server.console.charts import analytics_charts
from telephony.server.console.routes import check_csrf, render_page, supervisor
from telephony.server.http import services_of
from telephony.store import StoreError
from telephony.store.analytics import figures
from telephony.store.console_records import SignedIn
from telephony.store.models import LAYERS
from telephony.store.review_records import ReviewedHandoff, Verdict

log = logging.getLogger(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)
DEFAULT_SPAN = timedelta(days=30)
Supervisor = Annotated[SignedIn, Depends(supervisor)]


class BadWindow(ValueError):
    """A `from`/`to` that cannot be read, or that ends before it starts."""


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadWindow(f"{text[:40]!r} is not a date (use YYYY-MM-DD)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def window(request: Request) -> tuple[datetime, datetime]:
    """The page's window: `to` (a date means through the end of that day; by default today) back to `from`,
    30 days by default."""
    params = request.query_params
    until = _moment(params.get("to"))
    if until is not None and len(params.get("to", "").strip()) == 10:  # a bare date: through the end of it
        until += timedelta(days=1)
    if until is None:  # through the end of today
        now = services_of(request).clock()
        until = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    since = _moment(params.get("from")) or until - DEFAULT_SPAN
    if since >= until:
        raise BadWindow("`from` must come before `to`")
    return since, until


def _shown(since: datetime, until: datetime) -> dict[str, str]:
    return {"from": since.date().isoformat(), "to": (until - timedelta(microseconds=1)).date().isoformat()}


@router.get("/analytics", response_class=HTMLResponse)
async def analytics_page(request: Request, who: Supervisor) -> HTMLResponse:
    services = services_of(request)
    queues = [q.name for q in services.pack.queues]
    queue = request.query_params.get("queue") or None
    try:
        since, until = window(request)
    except BadWindow as exc:
        return render_page(request, "analytics.html", 422, who=who, error=str(exc), queues=queues, queue=queue,
                     shown=dict(request.query_params), figures=None, charts=[])  # fmt: skip
    if queue is not None and queue not in queues:
        return render_page(request, "analytics.html", 422, who=who, error=f"there is no queue {queue[:40]!r}",
                     queues=queues, queue=None, shown=_shown(since, until), figures=None, charts=[])  # fmt: skip
    facts = await asyncio.to_thread(services.store.analytics_facts, since, until, queue)
    got = figures(facts)
    return render_page(request, "analytics.html", who=who, error=None, queues=queues, queue=queue,
                 shown=_shown(since, until), figures=asdict(got), charts=analytics_charts(got))  # fmt: skip


@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request, who: Supervisor) -> HTMLResponse:
    services = services_of(request)
    try:
        since, until = window(request)
        per_category = int(request.query_params.get("per_category") or 5)
        if not 1 <= per_category <= 100:
            raise BadWindow("per_category must be 1 to 100")
    except (BadWindow, ValueError) as exc:
        return render_page(request, "review.html", 422, who=who, error=str(exc), shown=dict(request.query_params),
                     sample=[], report=None, everything=False, per_category=5, saved=None)  # fmt: skip
    everything = request.query_params.get("all") == "1"
    store = services.store
    sample = await asyncio.to_thread(store.review_sample, since, until, per_category, include_reviewed=everything)
    report = review_report(await asyncio.to_thread(store.review_facts, since, until))
    return render_page(request, "review.html", who=who, error=None, shown=_shown(since, until), sample=sample,
                 report=report, everything=everything, per_category=per_category,
                 saved=request.query_params.get("saved"))  # fmt: skip


class ReviewForm(BaseModel):
    """A reviewer's verdict as the review form sends it."""

    verdict: str = Field(pattern="^(avoidable|necessary)$")
    layer: str | None = Field(None, max_length=32)
    note: str | None = Field(None, max_length=4000)
    expected_queue: str | None = Field(None, max_length=128)


async def _review_context(request: Request, handoff_id: str) -> dict[str, Any]:
    store = services_of(request).store
    handoff = await asyncio.to_thread(store.get_handoff, handoff_id)
    if handoff is None:
        raise HTTPException(status_code=404, detail=f"no handoff {handoff_id}")
    call = await asyncio.to_thread(store.get_call, str(handoff["call_sid"])) or {}
    review = await asyncio.to_thread(store.review, handoff_id)
    wrapup = await asyncio.to_thread(store.wrapup, handoff_id)
    stored_prompts = call.get("prompts")
    heard = stored_prompts if isinstance(stored_prompts, list) else []
    prompts = tuple(str(p.get("prompt_id", "")) for p in heard if isinstance(p, dict))
    seen = ReviewedHandoff(handoff_id, str(handoff["call_sid"]), str(handoff["category"]), str(handoff["trigger"]),
                           str(handoff["queue"]), prompts, None, None)  # fmt: skip
    return {"handoff": handoff, "package": handoff.get("package") or {}, "call": call, "review": review,
            "wrapup": wrapup, "dead_ends": dead_ends(seen), "layers": sorted(LAYERS),
            "queues": [q.name for q in services_of(request).pack.queues]}  # fmt: skip


@router.get("/review/{handoff_id}", response_class=HTMLResponse)
async def review_handoff_page(request: Request, handoff_id: str, who: Supervisor) -> HTMLResponse:
    context = await _review_context(request, handoff_id)
    return render_page(request, "review_handoff.html", who=who, errors=[], **context)


@router.post("/review/{handoff_id}", response_model=None)
async def review_handoff(request: Request, handoff_id: str, who: Supervisor) -> Response:
    form = await request.form()
    raw = {k: str(v).strip() for k, v in form.items()}
    check_csrf(who, raw.get("csrf_token"))
    services = services_of(request)
    errors: list[str] = []
    verdict: Verdict | None = None
    try:
        parsed = ReviewForm.model_validate({k: (v or None) for k, v in raw.items() if k != "csrf_token"})
        verdict = Verdict(parsed.verdict, parsed.layer, parsed.note, parsed.expected_queue)
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    queues = {q.name for q in services.pack.queues}
    if verdict is not None and verdict.expected_queue is not None and verdict.expected_queue not in queues:
        errors.append(f"expected_queue: there is no queue {verdict.expected_queue[:40]!r}")
    if verdict is not None and not errors:
        try:
            await asyncio.to_thread(services.store.save_review, handoff_id, who.account.name, verdict)
        except StoreError as exc:
            if "no handoff" in str(exc):
                raise HTTPException(status_code=404, detail=f"no handoff {handoff_id}") from None
            errors.append(str(exc))
    if errors:
        context = await _review_context(request, handoff_id)
        return render_page(request, "review_handoff.html", 422, who=who, errors=errors, **context)
    log.info("console: %s reviewed handoff %s", who.account.name, handoff_id)
    return RedirectResponse(f"/console/review?saved={handoff_id}", status_code=303)
