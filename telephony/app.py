"""The HTTP and websocket face of the server: Twilio's webhooks, the media stream, and the JSON API.

Routes are thin: they check who is asking, hand the work to a session or a TwiML builder, and answer.
Every Twilio webhook answers TwiML even when something inside fails: the fallback sends the caller to
a person rather than letting Twilio play its "application error" message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import FormData
from starlette.websockets import WebSocketDisconnect, WebSocketState

from telephony import twiml
from telephony.desk import SORRY_TRANSFER
from telephony.security import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, public_host, websocket_url_forms
from telephony.services import Services
from telephony.session import CallSession, SessionDeps
from voice.stt import OracleRecognizerFactory, OracleUtterance

log = logging.getLogger(__name__)

MEDIA_PATH = "/twilio/media"


class OracleLine(BaseModel):
    text: str
    confidence: float = Field(1.0, ge=0.0, le=1.0)


class OracleScript(BaseModel):
    """The reference transcript of a replayed call, for oracle ASR."""

    utterances: list[OracleLine]
    wer: float | None = Field(None, ge=0.0, le=1.0)
    seed: int | None = None
    noise_key: str | None = None


class CallbackDone(BaseModel):
    notes: str | None = None


class WebSocketTransport:
    """The session's view of a Starlette websocket: sends that never raise once the caller is gone."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self.closed = False

    async def send(self, text: str) -> None:
        if self.closed:
            return
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closed = True

    async def close(self, code: int = 1000) -> None:
        if self.closed:
            return
        self.closed = True
        # the caller may be gone already (Starlette raises WebSocketDisconnect, uvicorn OSError): nothing to close
        with suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._ws.close(code)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _base_url(request: Request) -> str:
    """The public base URL Twilio used to reach us (setting, or the request's own scheme and Host)."""
    public = _services(request).settings.public_url
    return public or f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


async def twilio_form(request: Request) -> FormData:
    """The webhook's form, once its X-Twilio-Signature is checked (403 otherwise)."""
    form = await request.form()
    query = request.url.query
    url = _base_url(request) + request.url.path + (f"?{query}" if query else "")
    ok = _services(request).signatures.webhook_ok(
        url, form, request.headers.get(SIGNATURE_HEADER), request.headers.get(SIGNATURE_SETTINGS_HEADER)
    )
    if not ok:
        log.warning(
            "refused %s: missing or invalid X-Twilio-Signature (call %s)", request.url.path, form.get("CallSid")
        )
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return form


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Guards the JSON API with the bearer token; 503 while none is configured."""
    check = _services(request).api_token
    if not check.configured:
        raise HTTPException(status_code=503, detail="the API is disabled: set HANDOFF_API_TOKEN to enable it")
    if not check.ok(authorization):
        raise HTTPException(status_code=401, detail="missing or wrong bearer token")


TwilioForm = Annotated[FormData, Depends(twilio_form)]


def create_app(services: Services) -> FastAPI:
    """The FastAPI application around already-built services."""
    settings = services.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not settings.validate_signatures:
            log.warning(
                "!!! X-Twilio-Signature checking is OFF (HANDOFF_VALIDATE_SIGNATURES=false): anyone who can "
                "reach this server can pose as Twilio. Never run like this in production. !!!"
            )
        elif not settings.twilio_auth_token.get_secret_value():
            log.warning("HANDOFF_TWILIO_AUTH_TOKEN is empty: every Twilio request will be refused with 403")
        warm = getattr(services.synthesizer, "warm", None)
        if warm is not None:
            prompts = list(services.dialogs.fixed_prompts())
            await warm(prompts)
            log.info("synthesised %d fixed prompts", len(prompts))
        dialing = asyncio.create_task(services.dialer.run_forever()) if services.dialer is not None else None
        yield
        if dialing is not None:
            dialing.cancel()
        await services.aclose()

    app = FastAPI(
        title="handoff",
        summary="A phone bot that hands calls to people with the context attached.",
        lifespan=lifespan,
    )
    app.state.services = services

    def base_url(request: Request) -> str:
        return _base_url(request)

    def xml(document: str) -> Response:
        return Response(content=document, media_type="text/xml")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
        if request.url.path.startswith("/twilio/"):
            return xml(
                twiml.dial_number(
                    settings.transfer_number,
                    whisper_url=None,
                    action_url=base_url(request) + "/twilio/dial-status",
                    caller_id=settings.transfer_caller_id,
                    timeout_s=settings.transfer_timeout_s,
                    say_first=SORRY_TRANSFER,
                )
            )
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.post("/twilio/voice", summary="Twilio voice webhook: answer the call and open the media stream")
    async def voice(request: Request, form: TwilioForm) -> Response:
        call_sid = str(form.get("CallSid", ""))
        if not call_sid:
            raise HTTPException(status_code=400, detail="CallSid is missing")
        record = services.registry.open(call_sid)
        record.account_sid = str(form.get("AccountSid") or "") or None
        record.caller = str(form.get("From") or "") or None
        record.called = str(form.get("To") or "") or None
        parameters = {
            "call_sid": call_sid,
            "caller": record.caller or "",
            "called": record.called or "",
            "caller_name": str(form.get("CallerName") or ""),
            "direction": str(form.get("Direction") or ""),
            "forwarded_from": str(form.get("ForwardedFrom") or ""),
            "region": str(form.get("FromState") or form.get("FromCountry") or ""),
        }
        base = base_url(request)
        scheme = "wss" if base.startswith("https://") else "ws"
        stream_url = f"{scheme}://{public_host(settings.public_url, request.headers.get('host', ''))}{MEDIA_PATH}"
        log.info("call %s answered; streaming to %s", call_sid, stream_url)
        return xml(twiml.connect_stream(stream_url, base + "/twilio/stream-ended", parameters))

    @app.websocket(MEDIA_PATH)
    async def media(ws: WebSocket) -> None:
        host = public_host(settings.public_url, ws.headers.get("host", ""))
        secure = settings.public_url.startswith("https://") if settings.public_url else ws.url.scheme == "wss"
        forms = websocket_url_forms(host, MEDIA_PATH, secure=secure)
        if not services.signatures.websocket_ok(forms, ws.headers.get(SIGNATURE_HEADER.lower())):
            log.warning("refused media stream upgrade from %s: missing or invalid X-Twilio-Signature", ws.client)
            await ws.close(code=1008)  # before accept: the client gets HTTP 403
            return
        await ws.accept()
        http_base = settings.public_url or f"{'https' if secure else 'http'}://{host}"
        transport = WebSocketTransport(ws)
        session = CallSession(
            SessionDeps(
                recognizers=services.recognizers,
                synthesizer=services.synthesizer,
                dialogs=services.dialogs,
                registry=services.registry,
                stt_executor=services.stt_executor,
                tools=services.tools,
                router=services.router,
                availability=services.availability,
                clock=services.clock,
                on_decision=services.desk.decided,
                carry_out=lambda record: services.desk.move_live_call(record, http_base),
                on_end=services.desk.ended,
            ),
            services.session_config,
            transport,
        )
        try:
            while not session.closing:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                await session.receive(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            await session.end("dropped")
            if ws.application_state != WebSocketState.DISCONNECTED:
                await transport.close()

    desk = services.desk

    def call_of(request: Request, form: FormData) -> str:
        return request.query_params.get("call") or str(form.get("CallSid", ""))

    def attempt_of(request: Request) -> int:
        try:
            return max(0, int(request.query_params.get("attempt", "0")))
        except ValueError:
            return 0

    def fields(form: FormData) -> dict[str, str]:
        return {k: str(v) for k, v in form.items()}

    @app.post("/twilio/stream-ended", summary="<Connect action>: carry out what the stream decided")
    async def stream_ended(request: Request, form: TwilioForm) -> Response:
        return xml(await desk.stream_ended(call_of(request, form), fields(form), base_url(request)))

    @app.post("/twilio/whisper", summary="<Number url>: the summary the agent hears, then press 1 to take the call")
    async def whisper(request: Request, form: TwilioForm) -> Response:
        call = request.query_params.get("call") or str(form.get("ParentCallSid", ""))
        return xml(await desk.whisper(call, attempt_of(request), fields(form), base_url(request)))

    @app.post("/twilio/accept", summary="The agent's key after the whisper: 1 bridges the call")
    async def accept(request: Request, form: TwilioForm) -> Response:
        call = request.query_params.get("call") or str(form.get("ParentCallSid", ""))
        return xml(await desk.accept(call, attempt_of(request), fields(form)))

    @app.post("/twilio/dial-status", summary="<Dial action>: the transfer attempt's outcome and the next step")
    async def dial_status(request: Request, form: TwilioForm) -> Response:
        return xml(await desk.dial_status(call_of(request, form), attempt_of(request), fields(form), base_url(request)))

    @app.post("/twilio/enqueue-status", summary="<Enqueue action>: what became of the TaskRouter task")
    async def enqueue_status(request: Request, form: TwilioForm) -> Response:
        return xml(await desk.enqueue_status(call_of(request, form), fields(form)))

    @app.post("/twilio/fallback-choice", summary="After a failed transfer: 1 callback, 2 voicemail")
    async def fallback_choice(request: Request, form: TwilioForm) -> Response:
        digits = str(form.get("Digits") or request.query_params.get("Digits") or "")
        return xml(await desk.fallback_choice(call_of(request, form), digits, base_url(request)))

    @app.post("/twilio/voicemail", summary="<Record action>: the caller's message")
    async def voicemail(request: Request, form: TwilioForm) -> Response:
        return xml(await desk.voicemail(call_of(request, form), fields(form), base_url(request)))

    @app.post("/twilio/recording-status", summary="recordingStatusCallback: the message's recording SID and URL")
    async def recording_status(request: Request, form: TwilioForm) -> Response:
        await desk.recording_status(call_of(request, form), fields(form))
        return Response(status_code=204)

    # --- JSON API ------------------------------------------------------------------------------------------

    async def stored(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    @app.get(
        "/api/calls/{call_sid}",
        dependencies=[Depends(require_token)],
        summary="A call: transcript, handoff package, routing, dial attempts, callbacks, voicemail, outcome",
    )
    async def get_call(call_sid: str) -> dict[str, Any]:
        live = services.registry.get(call_sid)
        if live is not None:
            await desk.save(live)
        row = await stored(services.store.get_call, call_sid)
        if row is None:
            raise HTTPException(status_code=404, detail=f"no call {call_sid}")
        if live is not None:  # what only the live record has: latencies, the live outcome, the decision
            row["decision"] = live.decision.model_dump(mode="json") if live.decision else None
            row["latencies"] = [lat.model_dump(mode="json") for lat in live.latencies]
            row["live_outcome"] = {k: v for k, v in live.outcome.items() if not k.startswith("_")}
            row["timeline"] = [e.model_dump(mode="json") for e in live.timeline]
            row["turns"] = [t.model_dump(mode="json") for t in live.turns]
            row["prompts_played"] = [p.model_dump(mode="json") for p in live.prompts]
        return dict(row)

    @app.get("/api/handoffs", dependencies=[Depends(require_token)], summary="Handoffs, by status and queue")
    async def list_handoffs(
        status: str | None = None, queue: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return list(await stored(services.store.list_handoffs, status=status, queue=queue, limit=min(limit, 1000)))

    @app.get("/api/callbacks", dependencies=[Depends(require_token)], summary="Callback requests, by status")
    async def list_callbacks(status: str | None = None) -> list[dict[str, Any]]:
        return list(await stored(services.store.list_callbacks, status))

    @app.post(
        "/api/callbacks/{callback_id}/done", dependencies=[Depends(require_token)], summary="Mark a callback done"
    )
    async def callback_done(callback_id: int, body: CallbackDone | None = None) -> dict[str, Any]:
        if not await stored(services.store.mark_callback, callback_id, "done", body.notes if body else None):
            raise HTTPException(status_code=404, detail=f"no callback {callback_id}")
        return {"id": callback_id, "status": "done"}

    @app.get("/api/deliveries", dependencies=[Depends(require_token)], summary="Help-desk deliveries, by status")
    async def list_deliveries(status: str | None = None) -> list[dict[str, Any]]:
        return [dict(d) for d in await stored(services.store.deliveries, status)]

    @app.post(
        "/api/deliveries/{delivery_id}/resend",
        dependencies=[Depends(require_token)],
        summary="Send a stored delivery again (same id, fresh signature)",
    )
    async def resend_delivery(delivery_id: str) -> dict[str, Any]:
        if services.deliverer is None:
            raise HTTPException(status_code=409, detail="no webhook URLs are configured")
        if await stored(services.store.get_delivery, delivery_id) is None:
            raise HTTPException(status_code=404, detail=f"no delivery {delivery_id}")
        delivered = await services.deliverer.resend(delivery_id)
        return {"delivery_id": delivery_id, "delivered": delivered}

    @app.post(
        "/api/oracle/{call_sid}",
        dependencies=[Depends(require_token)],
        summary="Oracle ASR only: script what the caller on a coming call will say (replays and tests)",
    )
    async def register_oracle_script(call_sid: str, script: OracleScript) -> dict[str, Any]:
        factory = services.recognizers
        if not isinstance(factory, OracleRecognizerFactory):
            raise HTTPException(
                status_code=409, detail=f"this server recognises speech with {factory.name}, not oracle ASR"
            )
        factory.register(
            call_sid,
            [OracleUtterance(u.text, u.confidence) for u in script.utterances],
            wer=script.wer,
            seed=script.seed,
            noise_key=script.noise_key,
        )
        return {"call_sid": call_sid, "utterances": len(script.utterances)}

    # --- the callback dialer's legs --------------------------------------------------------------------------

    def dialer_or_404() -> Any:
        if services.dialer is None:
            raise HTTPException(status_code=404, detail="the callback dialer is off")
        return services.dialer

    def callback_of(request: Request) -> int:
        try:
            return int(request.query_params.get("callback", ""))
        except ValueError:
            raise HTTPException(status_code=400, detail="callback id missing") from None

    @app.post("/twilio/callback/agent", summary="Callback dialer: the agent answered; the summary, press 1")
    async def callback_agent(request: Request, form: TwilioForm) -> Response:
        return xml(await asyncio.to_thread(dialer_or_404().agent_twiml, callback_of(request)))

    @app.post("/twilio/callback/agent-accept", summary="Callback dialer: 1 dials the customer (with AMD)")
    async def callback_agent_accept(request: Request, form: TwilioForm) -> Response:
        dialer = dialer_or_404()
        return xml(
            await asyncio.to_thread(dialer.agent_accept_twiml, callback_of(request), str(form.get("Digits", "")))
        )

    @app.post("/twilio/callback/customer", summary="Callback dialer: a machine gets a message, a person is bridged")
    async def callback_customer(request: Request, form: TwilioForm) -> Response:
        return xml(dialer_or_404().customer_twiml(callback_of(request), str(form.get("AnsweredBy", ""))))

    @app.post("/twilio/callback/result", summary="Callback dialer: done, or tried again later")
    async def callback_result(request: Request, form: TwilioForm) -> Response:
        return xml(await dialer_or_404().result(callback_of(request), str(form.get("DialCallStatus", ""))))

    @app.post("/twilio/callback/agent-status", summary="Callback dialer: the agent leg's status")
    async def callback_agent_status(request: Request, form: TwilioForm) -> Response:
        if str(form.get("CallStatus")) in ("busy", "no-answer", "failed", "canceled"):
            await asyncio.to_thread(
                services.store.mark_callback,
                callback_of(request),
                "requested",
                f"agent leg {form.get('CallStatus')}; will try again",
            )
        return Response(status_code=204)

    @app.get("/healthz", summary="Liveness: the server is up and which recogniser it uses")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "asr": services.recognizers.name}

    return app
