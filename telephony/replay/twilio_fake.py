"""A small Twilio-compatible REST server on loopback, so the real twilio client can be tested over real HTTP.

It speaks just enough of Twilio's API for call control and queue availability:

- ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``              create a call (To, From, Url, MachineDetection...)
- ``GET|POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` fetch, or update (Twiml, Url, Status)
- ``GET /v1/Workspaces/{ws}/TaskQueues/{tq}/RealTimeStatistics``     TaskRouter queue statistics

Every request is recorded in order (`TwilioFake.requests`), even the ones it refuses. Requests need HTTP basic
auth with the fake's account SID and auth token, as Twilio's do. Errors come back in Twilio's legacy shape
(``{"code", "message", "more_info", "status"}``), which twilio-python turns into a `TwilioRestException`.
Codes 20003 (authenticate), 20404 (not found) and 20500 (internal error) are Twilio's; the 4xx codes for
invalid parameters or call state are the fake's best approximation.

A replay harness learns that the server moved a live call with new TwiML from `TwilioFake.redirect_of(sid)`
(or `updates`, or the `on_call_update` callback): it must then send ``stop`` on that call's media stream and
run the new TwiML.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

__all__ = ["CallUpdate", "RecordedRequest", "TwilioFake"]

API = "/2010-04-01/Accounts/{account_sid}"
ENDED = frozenset({"completed", "canceled", "failed", "busy", "no-answer"})
NOT_ANSWERED = frozenset({"queued", "ringing"})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; `form` keeps the last value of a repeated field, `form_items` all."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    form_items: tuple[tuple[str, str], ...]
    authorized: bool
    at: float
    """`time.monotonic()` on arrival."""


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """A call update the fake accepted: new TwiML or URL for a live call, or a status change."""

    call_sid: str
    twiml: str | None
    url: str | None
    requested_status: str | None
    call_status: str
    """The call's status after the update."""

    @property
    def redirected(self) -> bool:
        """True when the call now runs new TwiML: its media stream must stop."""
        return self.twiml is not None or self.url is not None


@dataclass(frozen=True, slots=True)
class CreatedCall:
    """An outbound call the server asked for (`calls.create`): who, and the URLs Twilio would fetch and post."""

    sid: str
    to: str
    from_: str
    url: str
    status_callback: str
    machine_detection: str | None


@dataclass(slots=True)
class _Failure:
    path_substring: str
    status: int
    code: int
    remaining: int
    method: str | None


class _TwilioError(Exception):
    """Answered as Twilio's error JSON by the app's exception handler."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _Server(uvicorn.Server):
    """uvicorn's server, stopped by an event instead of a flag it polls every 0.1 s (tests start one per test)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default response headers, as uvicorn's own loop does first
        await self.stop.wait()


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment)  # "Fri, 20 Aug 2010 01:13:42 +0000", what twilio's deserializer reads


def _default_code(status: int) -> int:
    return {401: 20003, 404: 20404, 429: 20429}.get(status, 20500 if status >= 500 else 20001)


class TwilioFake:
    """An in-process stand-in for Twilio's REST API; see the module docstring for what it serves."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.base_url = ""
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, dict[str, object]] = {}
        self.updates: asyncio.Queue[CallUpdate] = asyncio.Queue()
        self._redirects: dict[str, CallUpdate] = {}  # the first redirect of each call: what its harness runs
        self.redirects: list[CallUpdate] = []  # every redirect, in order (a conference moves its caller twice)
        self.created: list[CreatedCall] = []  # outbound calls asked for, in order (agent legs)
        self.recordings: dict[str, bytes] = {}  # RecordingSid -> WAV bytes, served as Twilio serves them
        self.on_call_update: Callable[[CallUpdate], object] | None = None
        self._failures: list[_Failure] = []
        self._queue_stats: dict[tuple[str, str], dict[str, object]] = {}
        self.app = self._build_app()

    # -- test controls ------------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def running(cls, account_sid: str | None = None, auth_token: str | None = None) -> AsyncIterator[TwilioFake]:
        """Serve a new fake with uvicorn on a free 127.0.0.1 port in this event loop, until the block exits."""
        fake = cls(account_sid, auth_token)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(fake.app, log_level="warning", lifespan="off", ws="none", access_log=False)
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the Twilio fake stopped before it started")
                await asyncio.sleep(0.005)
            fake.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            yield fake
        finally:
            server.should_exit = True
            server.stop.set()
            await task
            sock.close()

    def add_call(
        self,
        sid: str | None = None,
        *,
        to: str = "+15005550006",
        from_: str = "+15551230000",
        status: str = "in-progress",
        direction: str = "inbound",
        parent_call_sid: str | None = None,
    ) -> str:
        """Make a call exist (e.g. the caller's inbound call a replay is playing); returns its SID."""
        sid = sid or "CA" + secrets.token_hex(16)
        now = datetime.now(UTC)
        self.calls[sid] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "parent_call_sid": parent_call_sid,
            "to": to,
            "to_formatted": to,
            "from": from_,
            "from_formatted": from_,
            "phone_number_sid": None,
            "status": status,
            "direction": direction,
            "answered_by": None,
            "api_version": "2010-04-01",
            "date_created": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "start_time": _rfc2822(now) if status not in NOT_ANSWERED else None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "stir_verstat": None,
            "trunk_sid": None,
            "uri": f"{API.format(account_sid=self.account_sid)}/Calls/{sid}.json",
            "subresource_uris": {
                name: f"{API.format(account_sid=self.account_sid)}/Calls/{sid}/{name.title().replace('_', '')}.json"
                for name in ("notifications", "recordings", "streams", "events")
            },
        }
        return sid

    def set_call_status(self, sid: str, status: str) -> None:
        """Move a call on, as the carrier would (e.g. the agent answers: ``in-progress``)."""
        call = self.calls[sid]
        call["status"] = status
        self._touch(call)

    def fail_next(
        self,
        path_substring: str,
        status: int = 500,
        times: int = 1,
        *,
        method: str | None = None,
        code: int | None = None,
    ) -> None:
        """Answer the next `times` authorized requests whose path contains `path_substring` with this error."""
        self._failures.append(_Failure(path_substring, status, code or _default_code(status), times, method))

    def set_queue_stats(
        self,
        workspace_sid: str,
        task_queue_sid: str,
        *,
        available_workers: int = 0,
        eligible_workers: int | None = None,
        pending: int = 0,
        reserved: int = 0,
        assigned: int = 0,
        wrapping: int = 0,
        longest_wait_s: int = 0,
    ) -> None:
        """Set what RealTimeStatistics answers for one queue (an unknown queue answers 404)."""
        eligible = available_workers if eligible_workers is None else eligible_workers
        self._queue_stats[(workspace_sid, task_queue_sid)] = {
            "account_sid": self.account_sid,
            "workspace_sid": workspace_sid,
            "task_queue_sid": task_queue_sid,
            "activity_statistics": [
                {"sid": "WA" + "0" * 32, "friendly_name": "Available", "workers": available_workers},
                {"sid": "WA" + "1" * 32, "friendly_name": "Offline", "workers": max(eligible - available_workers, 0)},
            ],
            "longest_task_waiting_age": longest_wait_s,
            "longest_task_waiting_sid": ("WT" + "0" * 32) if pending or reserved else None,
            "longest_relative_task_age_in_queue": longest_wait_s,
            "longest_relative_task_sid_in_queue": ("WT" + "0" * 32) if pending or reserved else None,
            "tasks_by_priority": {},
            "tasks_by_status": {"assigned": assigned, "pending": pending, "reserved": reserved, "wrapping": wrapping},
            "total_available_workers": available_workers,
            "total_eligible_workers": eligible,
            "total_tasks": pending + reserved + assigned + wrapping,
        }

    def requests_to(self, path_substring: str, method: str | None = None) -> list[RecordedRequest]:
        """The recorded requests whose path contains `path_substring` (and with this method, if given)."""
        return [r for r in self.requests if path_substring in r.path and (method is None or r.method == method.upper())]

    # -- the HTTP side ------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Twilio fake", openapi_url=None, docs_url=None, redoc_url=None)

        @app.exception_handler(_TwilioError)
        async def twilio_error(request: Request, exc: _TwilioError) -> JSONResponse:
            headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if exc.status == 401 else None
            body = {
                "code": exc.code,
                "message": exc.message,
                "more_info": f"https://www.twilio.com/docs/errors/{exc.code}",
                "status": exc.status,
            }
            return JSONResponse(body, status_code=exc.status, headers=headers)

        @app.post(API + "/Calls.json")
        async def create_call(request: Request, account_sid: str) -> JSONResponse:
            form = await self._admit(request, account_sid)
            for field, code in (("To", 21201), ("From", 21213)):
                if not form.get(field):
                    raise _TwilioError(400, code, f"No '{field}' number is specified")
            if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
                raise _TwilioError(400, 20001, "Url, Twiml or ApplicationSid is required")
            sid = self.add_call(to=form["To"], from_=form["From"], status="queued", direction="outbound-api")
            self.created.append(CreatedCall(sid, form["To"], form["From"], form.get("Url", ""),
                                            form.get("StatusCallback", ""), form.get("MachineDetection")))  # fmt: skip
            return JSONResponse(self.calls[sid], status_code=201)

        @app.get(API + "/Calls/{call_sid}.json")
        async def fetch_call(request: Request, account_sid: str, call_sid: str) -> JSONResponse:
            await self._admit(request, account_sid)
            return JSONResponse(self._call(request, call_sid))

        @app.post(API + "/Calls/{call_sid}.json")
        async def update_call(request: Request, account_sid: str, call_sid: str) -> JSONResponse:
            form = await self._admit(request, account_sid)
            call = self._call(request, call_sid)
            update = self._apply_update(call, form)
            await self._announce(update)
            return JSONResponse(call)

        @app.get(API + "/Recordings/{recording_sid}.wav")
        async def fetch_recording(request: Request, account_sid: str, recording_sid: str) -> Response:
            await self._admit(request, account_sid)
            audio = self.recordings.get(recording_sid)
            if audio is None:
                raise _TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
            return Response(audio, media_type="audio/x-wav")

        @app.get("/v1/Workspaces/{workspace_sid}/TaskQueues/{task_queue_sid}/RealTimeStatistics")
        async def queue_statistics(request: Request, workspace_sid: str, task_queue_sid: str) -> JSONResponse:
            await self._admit(request, self.account_sid)
            stats = self._queue_stats.get((workspace_sid, task_queue_sid))
            if stats is None:
                raise _TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
            url = f"{self.base_url}/v1/Workspaces/{workspace_sid}/TaskQueues/{task_queue_sid}/RealTimeStatistics"
            return JSONResponse({**stats, "url": url})

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        async def unknown(request: Request, path: str) -> JSONResponse:
            await self._admit(request, self.account_sid)
            raise _TwilioError(404, 20404, f"The requested resource /{path} was not found")

        return app

    async def _admit(self, request: Request, account_sid: str) -> dict[str, str]:
        """Record the request, then refuse it as Twilio would (credentials, injected failure); returns its form."""
        body = await request.body()
        items = tuple(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        authorized = self._authorized(request.headers.get("authorization", ""))
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                form=dict(items),
                form_items=items,
                authorized=authorized,
                at=time.monotonic(),
            )
        )
        if not authorized:
            raise _TwilioError(401, 20003, "Authenticate")
        if account_sid != self.account_sid:
            raise _TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
        for failure in self._failures:
            if failure.path_substring in request.url.path and failure.method in (None, request.method):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                raise _TwilioError(failure.status, failure.code, f"Injected failure (HTTP {failure.status})")
        return dict(items)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(password, self.auth_token)

    def _call(self, request: Request, call_sid: str) -> dict[str, object]:
        call = self.calls.get(call_sid)
        if call is None:
            raise _TwilioError(404, 20404, f"The requested resource {request.url.path} was not found")
        return call

    def _apply_update(self, call: dict[str, object], form: dict[str, str]) -> CallUpdate:
        """Twilio's update rules as far as a call-control test needs them."""
        twiml, url, status = form.get("Twiml"), form.get("Url"), form.get("Status")
        if twiml is not None and url is not None:
            raise _TwilioError(400, 20001, "Twiml and Url are mutually exclusive")
        if twiml is None and url is None and status is None:
            raise _TwilioError(400, 20001, "Url, Twiml or Status is required")
        current = str(call["status"])
        if status is not None:
            if status not in ("canceled", "completed"):
                raise _TwilioError(400, 20001, f"Status must be canceled or completed, not {status!r}")
            # `canceled` stops only a call that is queued or ringing; `completed` hangs up any live call.
            if current not in ENDED and (status == "completed" or current in NOT_ANSWERED):
                call["status"] = status
                call["end_time"] = _rfc2822(datetime.now(UTC))
        elif current in ENDED:
            raise _TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.")
        self._touch(call)
        return CallUpdate(str(call["sid"]), twiml, url, status, str(call["status"]))

    def status_of(self, call_sid: str) -> str | None:
        call = self.calls.get(call_sid)
        return str(call["status"]) if call is not None else None

    def redirect_of(self, call_sid: str) -> CallUpdate | None:
        """The new TwiML or URL the server gave this live call, if it moved it (several calls may share a fake)."""
        return self._redirects.get(call_sid)

    async def _announce(self, update: CallUpdate) -> None:
        if update.redirected:
            self._redirects.setdefault(update.call_sid, update)
            self.redirects.append(update)
        self.updates.put_nowait(update)
        if self.on_call_update is not None:
            result = self.on_call_update(update)
            if inspect.isawaitable(result):
                await result

    @staticmethod
    def _touch(call: dict[str, object]) -> None:
        call["date_updated"] = _rfc2822(datetime.now(UTC))
