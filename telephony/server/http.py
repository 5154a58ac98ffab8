"""What every route shares: the server's services, the public base URL, Twilio's signature, the API token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from telephony.server.services import Services
from telephony.twilio.signatures import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER

log = logging.getLogger(__name__)


def services_of(request: Request) -> Services:
    """The services the app was built around (one per server process)."""
    services: Services = request.app.state.services
    return services


def base_url(request: Request) -> str:
    """The public base URL Twilio used to reach us (setting, or the request's own scheme and Host)."""
    public = services_of(request).settings.public_url
    return public or f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def xml(document: str) -> Response:
    """A TwiML answer."""
    return Response(content=document, media_type="text/xml")


class FormParams:
    """A webhook's form as the signature check reads it: every value of every field, as text."""

    def __init__(self, form: FormData) -> None:
        self._form = form

    def getlist(self, key: str) -> list[str]:
        return [str(value) for value in self._form.getlist(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._form.keys())


async def twilio_form(request: Request) -> FormData:
    """The webhook's form, once its X-Twilio-Signature is checked (403 otherwise)."""
    form = await request.form()
    query = request.url.query
    url = base_url(request) + request.url.path + (f"?{query}" if query else "")
    ok = services_of(request).signatures.webhook_ok(
        url, FormParams(form), request.headers.get(SIGNATURE_HEADER), request.headers.get(SIGNATURE_SETTINGS_HEADER)
    )
    if not ok:
        log.warning(
            "refused %s: missing or invalid X-Twilio-Signature (call %s)", request.url.path, form.get("CallSid")
        )
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return form


TwilioForm = Annotated[FormData, Depends(twilio_form)]


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Guards the JSON API with the bearer token; 503 while none is configured."""
    check = services_of(request).api_token
    if not check.configured:
        raise HTTPException(status_code=503, detail="the API is disabled: set HANDOFF_API_TOKEN to enable it")
    if not check.ok(authorization):
        raise HTTPException(status_code=401, detail="missing or wrong bearer token")
