"""The FastAPI application: Twilio's webhooks and media stream, the JSON API, and what runs beside them.

Every Twilio webhook answers TwiML even when something inside fails: the error handler sends the caller to a
person rather than letting Twilio play its "application error" message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from telephony.server import api, media, metrics_route, oracle_api, twilio_routes
from telephony.server.console import insight
from telephony.server.console import routes as console
from telephony.server.http import base_url, xml
from telephony.server.services import Services, oracle_of
from telephony.store.errors import StoreError
from telephony.store.notices import listen

log = logging.getLogger(__name__)


def create_app(services: Services) -> FastAPI:
    """The FastAPI application around already-built services."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await services.start()
        in_process = services.dialer is not None and services.settings.jobs == "in_process"  # else: `handoff worker`
        dialing = asyncio.create_task(services.dialer.run_forever()) if in_process and services.dialer else None
        upkeep = asyncio.create_task(services.upkeep.run_forever(), name="upkeep")
        notices = (
            asyncio.create_task(listen(services.store.url, services.heard), name="notices")
            if services.store.engine.dialect.name == "postgresql"
            else None
        )  # word from other instances about calls whose stream is here
        yield
        upkeep.cancel()
        if notices is not None:
            notices.cancel()
        if dialing is not None:
            dialing.cancel()
        await services.aclose()

    app = FastAPI(
        title="handoff",
        summary="A phone bot that hands calls to people with the context attached.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.include_router(twilio_routes.router)
    app.include_router(media.router)
    app.include_router(api.router)
    app.include_router(console.router)
    app.include_router(insight.router)
    app.include_router(metrics_route.router)
    app.mount("/console/static", console.static, name="console-static")
    app.add_exception_handler(console.NotSignedIn, to_sign_in)
    if oracle_of(services.recognition) is not None:
        app.include_router(oracle_api.router)
    app.add_exception_handler(StoreError, on_store_error)
    app.add_exception_handler(Exception, on_unexpected)

    @app.get("/healthz", summary="Up and taking calls (503 while draining), and which recogniser it uses")
    async def healthz() -> Response:
        if services.draining:  # the load balancer stops sending new calls here
            return JSONResponse({"status": "draining", "asr": services.recognition.name}, status_code=503)
        return JSONResponse({"status": "ok", "asr": services.recognition.name})

    return app


async def to_sign_in(request: Request, exc: Exception) -> Response:
    """A console page without a signed-in account: the browser goes to the sign-in page."""
    return RedirectResponse("/console/login", status_code=303)


async def on_store_error(request: Request, exc: Exception) -> Response:
    """The database failed under a route: Twilio still gets TwiML for a person; the API says 503, not 500."""
    log.error("the store failed on %s: %s", request.url.path, exc)
    services: Services = request.app.state.services
    if request.url.path.startswith("/twilio/"):
        return xml(services.desk.transfers.apology_transfer(base_url(request)))
    return JSONResponse({"detail": "the call store is unavailable; try again shortly"}, status_code=503)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """A bug inside a route: Twilio still gets TwiML that puts the caller through to a person."""
    log.error("unexpected error on %s", request.url.path, exc_info=exc)
    services: Services = request.app.state.services
    if request.url.path.startswith("/twilio/"):
        return xml(services.desk.transfers.apology_transfer(base_url(request)))
    return JSONResponse({"detail": "internal error"}, status_code=500)
