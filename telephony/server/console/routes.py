"""The agent console at /console: sign-in, the live queue, the handoff card with caller history, wrap-up with
feedback on the summary, and the supervisor's view. Server-rendered; every asset ships in the package.

Every page needs a signed-in account (agents and supervisors; the supervisor view needs a supervisor). Every
form carries its session's CSRF token, and the sign-in form a double-submit token, so another site cannot
post on an agent's behalf. The JSON API keeps its bearer token; these pages never accept it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, ValidationError

from telephony.server.console.accounts import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL,
    SignInRefused,
    Throttled,
    same,
)
from telephony.server.http import services_of
from telephony.store.console_records import SignedIn

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")  # autoescaping is on for .html
static = StaticFiles(directory=HERE / "static")
router = APIRouter(prefix="/console", include_in_schema=False)

LIVE = {"pending": "waiting", "announced": "waiting", "transferring": "ringing", "bridged": "bridged"}
EVENT_STREAM_FOR_S = 25.0  # then the browser reconnects (EventSource does): no response holds a shutdown long
LIVE_FOR = timedelta(hours=12)  # older handoffs that never moved on are no longer a live queue


class NotSignedIn(Exception):
    """A page asked for an account and the request has none: the browser goes to the sign-in page."""


def _secure(request: Request) -> bool:
    public = services_of(request).settings.public_url
    return bool(public and public.startswith("https://"))


async def signed_in(request: Request) -> SignedIn:
    """The request's account, or a redirect to the sign-in page."""
    who = await services_of(request).console_auth.signed_in(request.cookies.get(SESSION_COOKIE))
    if who is None:
        raise NotSignedIn
    return who


async def supervisor(who: Annotated[SignedIn, Depends(signed_in)]) -> SignedIn:
    if who.account.role != "supervisor":
        raise HTTPException(status_code=403, detail="this page is for supervisors")
    return who


def check_csrf(who: SignedIn, token: str | None) -> None:
    if not same(who.csrf_token, token):
        raise HTTPException(status_code=403, detail="the form's CSRF token is missing or wrong; reload the page")


def render_page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


# --- signing in and out ----------------------------------------------------------------------------------------


def _login_page(request: Request, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    page = render_page(request, "login.html", status_code, csrf_token=token, error=error)
    page.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                    path="/console", max_age=3600)  # fmt: skip
    return page


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", response_model=None)
async def login(
    request: Request,
    name: Annotated[str, Form(max_length=128)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if not same(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        return _login_page(request, "That form had expired. Please sign in again.", 403)
    client = request.client.host if request.client else "unknown"
    try:
        new = await services_of(request).console_auth.sign_in(name.strip(), password, client)
    except Throttled:
        return _login_page(request, "Too many failed sign-ins. Wait 15 minutes and try again.", 429)
    except SignInRefused:
        return _login_page(request, "Wrong name or password.", 401)
    log.info("console: %s signed in (%s)", new.account.name, new.account.role)
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(SESSION_COOKIE, new.token, httponly=True, samesite="strict", secure=_secure(request),
                        path="/console", max_age=int(SESSION_TTL.total_seconds()))  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/logout")
async def logout(
    request: Request,
    who: Annotated[SignedIn, Depends(signed_in)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> RedirectResponse:
    check_csrf(who, csrf_token)
    await services_of(request).console_auth.sign_out(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# --- the live queue ------------------------------------------------------------------------------------------


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


async def _queue_rows(request: Request) -> list[dict[str, Any]]:
    store = services_of(request).store
    now = services_of(request).clock()  # the store stamps handoffs with this clock
    rows = await asyncio.to_thread(store.live_handoffs, frozenset(LIVE), now - LIVE_FOR)
    out = []
    for row in rows:
        package = row.get("package") or {}
        created = _when(row.get("created_at"))
        out.append({
            "handoff_id": row["handoff_id"], "queue": row["queue"], "state": LIVE.get(str(row["status"]), "waiting"),
            "status": row["status"], "category": row["category"], "trigger": row["trigger"],
            "urgency": row["urgency"], "issue": package.get("primary_issue", "") if isinstance(package, dict) else "",
            "caller": row.get("caller") or "", "created_at": row.get("created_at"),
            "waiting_s": int((now - created).total_seconds()) if created else 0,
        })  # fmt: skip
    return out


@router.get("", response_class=HTMLResponse)
async def queue_page(request: Request, who: Annotated[SignedIn, Depends(signed_in)]) -> HTMLResponse:
    rows = await _queue_rows(request)
    return render_page(request, "queue.html", who=who, rows=rows, version=services_of(request).queue_watch.version)


@router.get("/queue", response_class=HTMLResponse)
async def queue_rows(request: Request, who: Annotated[SignedIn, Depends(signed_in)]) -> HTMLResponse:
    """The queue's rows alone: what the page fetches when the queue changes."""
    return render_page(request, "_queue_rows.html", rows=await _queue_rows(request))


@router.get("/events")
async def events(request: Request, who: Annotated[SignedIn, Depends(signed_in)]) -> StreamingResponse:
    """Server-sent events: `queue` whenever a handoff or wrap-up is stored anywhere, so the page refreshes."""
    watch = services_of(request).queue_watch

    async def stream() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        ends = asyncio.get_running_loop().time() + EVENT_STREAM_FOR_S
        async for version in watch.changes(heartbeat_s=5.0):
            if await request.is_disconnected() or asyncio.get_running_loop().time() > ends:
                return
            yield f"event: queue\ndata: {version}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


# --- the handoff card and the wrap-up ------------------------------------------------------------------------


async def _card(request: Request, handoff_id: str) -> dict[str, Any]:
    store = services_of(request).store
    handoff = await asyncio.to_thread(store.get_handoff, handoff_id)
    if handoff is None:
        raise HTTPException(status_code=404, detail=f"no handoff {handoff_id}")
    call_sid = str(handoff["call_sid"])
    call = await asyncio.to_thread(store.get_call, call_sid) or {}
    caller = call.get("caller")
    history = await asyncio.to_thread(store.caller_history, caller, call_sid) if isinstance(caller, str) else []
    wrapup = await asyncio.to_thread(store.wrapup, handoff_id)
    return {"handoff": handoff, "package": handoff.get("package") or {}, "call": call, "history": history,
            "wrapup": wrapup, "routing": handoff.get("routing") or {}}  # fmt: skip


@router.get("/handoffs/{handoff_id}", response_class=HTMLResponse)
async def card_page(request: Request, handoff_id: str, who: Annotated[SignedIn, Depends(signed_in)]) -> HTMLResponse:
    card = await _card(request, handoff_id)
    pack = services_of(request).pack
    return render_page(request, "card.html", who=who, dispositions=pack.dispositions,
                 queues=[q.name for q in pack.queues], saved=request.query_params.get("saved") == "1",
                 errors=[], **card)  # fmt: skip


class WrapUpForm(BaseModel):
    """What an agent says about a handed-off call and about the summary they were given."""

    disposition: str = Field(min_length=1, max_length=128)
    resolved: bool
    summary_rating: int = Field(ge=1, le=5)
    missing_facts: str | None = Field(None, max_length=2000)
    wrong_facts: str | None = Field(None, max_length=2000)
    had_to_repeat: bool = False
    repeated_fact: str | None = Field(None, max_length=255)
    wrong_queue: bool = False
    right_queue: str | None = Field(None, max_length=128)
    notes: str | None = Field(None, max_length=4000)


def _form_fields(raw: dict[str, str]) -> dict[str, Any]:
    """Checkboxes send nothing when unticked; empty text boxes mean nothing was said."""
    fields: dict[str, Any] = {k: (v.strip() or None) for k, v in raw.items() if k != "csrf_token"}
    for flag in ("had_to_repeat", "wrong_queue"):
        fields[flag] = raw.get(flag) in ("on", "true", "1", "yes")
    fields["resolved"] = raw.get("resolved") in ("yes", "true", "1", "on")
    return fields


@router.post("/handoffs/{handoff_id}/wrapup", response_model=None)
async def wrap_up(request: Request, handoff_id: str, who: Annotated[SignedIn, Depends(signed_in)]) -> Response:
    form = await request.form()
    raw = {k: str(v) for k, v in form.items()}
    check_csrf(who, raw.get("csrf_token"))
    pack = services_of(request).pack
    errors: list[str] = []
    try:
        wrapup = WrapUpForm.model_validate(_form_fields(raw))
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        wrapup = None
    if wrapup is not None and wrapup.disposition not in pack.dispositions:
        errors.append(f"disposition: not one of {', '.join(pack.dispositions)}")
    if wrapup is not None and wrapup.wrong_queue and wrapup.right_queue not in {q.name for q in pack.queues}:
        errors.append("right_queue: say which queue the call should have gone to")
    if errors or wrapup is None:
        card = await _card(request, handoff_id)
        return render_page(request, "card.html", 422, who=who, dispositions=pack.dispositions,
                     queues=[q.name for q in pack.queues], saved=False, errors=errors, **card)  # fmt: skip
    store = services_of(request).store
    if await asyncio.to_thread(store.get_handoff, handoff_id) is None:
        raise HTTPException(status_code=404, detail=f"no handoff {handoff_id}")
    await asyncio.to_thread(store.save_wrapup, handoff_id, who.account, who.account.name, wrapup.model_dump())
    log.info("console: %s wrapped up handoff %s", who.account.name, handoff_id)
    return RedirectResponse(f"/console/handoffs/{handoff_id}?saved=1", status_code=303)


# --- the supervisor ------------------------------------------------------------------------------------------


@router.get("/supervisor", response_class=HTMLResponse)
async def supervisor_page(request: Request, who: Annotated[SignedIn, Depends(supervisor)]) -> HTMLResponse:
    rows = await _queue_rows(request)
    by_queue: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = by_queue.setdefault(row["queue"], {"waiting": 0, "ringing": 0, "bridged": 0})
        counts[row["state"]] += 1
    feedback = await asyncio.to_thread(services_of(request).store.list_wrapups, 50)
    return render_page(request, "supervisor.html", who=who, by_queue=by_queue, rows=rows, feedback=feedback)
