"""The media-stream websocket: checked, accepted, and handed to a `CallSession` for the rest of the call.

The handler is a short loop: read a message, give it to the session, until the session or the caller closes
the stream. Under the server's own uvicorn protocol (`frames.py`) most inbound audio never reaches the loop:
the session hears it from the socket's callback, and the loop gets only what needs waiting for. Whatever
happens, the session's `end()` runs, so the caller's words are kept and the call is handed on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import suppress

from fastapi import APIRouter, WebSocket
from fastapi.responses import PlainTextResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from telephony.calls.session import POLICY_VIOLATION, CallSession
from telephony.server.frames import DIRECT_ERROR, DIRECT_EXTENSION, DIRECT_LEFT
from telephony.server.services import Services
from telephony.twilio.signatures import SIGNATURE_HEADER, public_host, websocket_url_forms

log = logging.getLogger(__name__)

MEDIA_PATH = "/twilio/media"

router = APIRouter()


class WebSocketTransport:
    """The session's view of a Starlette websocket: sends that never raise once the caller is gone."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self.closed = False
        direct = ws.scope.get("extensions", {}).get(DIRECT_EXTENSION) or {}
        self._promptly: Callable[[bool], None] | None = direct.get("promptly")
        self._write_now: Callable[[Sequence[str]], bool] | None = direct.get("send_now")

    def read_promptly(self, promptly: bool) -> None:
        if self._promptly is not None:  # under our uvicorn protocol, whose reads may be batched
            self._promptly(promptly)

    async def send(self, text: str) -> None:
        if self.closed:
            return
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closed = True

    def send_now(self, texts: Sequence[str]) -> bool:
        if self.closed or self._write_now is None or self._ws.application_state is not WebSocketState.CONNECTED:
            return False
        return self._write_now(texts)

    async def close(self, code: int = 1000) -> None:
        if self.closed:
            return
        self.closed = True
        # the caller may be gone already (Starlette raises WebSocketDisconnect, uvicorn OSError): nothing to close
        with suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._ws.close(code)


@router.websocket(MEDIA_PATH)
async def media(ws: WebSocket) -> None:
    """Twilio's bidirectional Media Stream for one call."""
    services: Services = ws.app.state.services
    settings = services.settings
    host = public_host(settings.public_url, ws.headers.get("host", ""))
    secure = settings.public_url.startswith("https://") if settings.public_url else ws.url.scheme == "wss"
    forms = websocket_url_forms(host, MEDIA_PATH, secure=secure)
    if not services.signatures.websocket_ok(forms, ws.headers.get(SIGNATURE_HEADER.lower())):
        log.warning("refused media stream upgrade from %s: missing or invalid X-Twilio-Signature", ws.client)
        await ws.close(code=1008)  # before accept: the client gets HTTP 403
        return
    if services.draining:  # stopping: a 503 the load balancer retries on another instance
        log.info("refused a media stream: this instance is draining")
        await ws.send_denial_response(PlainTextResponse("draining", status_code=503))
        return
    await ws.accept()
    transport = WebSocketTransport(ws)
    http_base = settings.public_url or f"{'https' if secure else 'http'}://{host}"
    session = CallSession(services.session_deps(), services.session_config, transport, base_url=http_base)
    direct = ws.scope.get("extensions", {}).get(DIRECT_EXTENSION)
    if direct is not None:  # under our uvicorn protocol: audio is heard from the socket's callback
        direct["register"](session.receive_now)
    try:
        while not session.closing:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if DIRECT_ERROR in message:
                raise message[DIRECT_ERROR]  # as if handling it here had raised: the caller is handed on below
            if DIRECT_LEFT in message:
                await session.handle(message[DIRECT_LEFT])
                continue
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            await session.receive(data)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        await session.end("dropped")
        if ws.application_state != WebSocketState.DISCONNECTED:
            await transport.close(POLICY_VIOLATION if session.refused else 1000)
