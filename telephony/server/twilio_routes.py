"""Twilio's webhooks: answer the call, then everything the desk does once the stream has decided.

Routes are thin: the form is signature-checked by `TwilioForm`, the work is the desk's, and the answer is
TwiML. Every webhook answers TwiML even when something inside fails (see the app's error handler).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from telephony.calls.admission import TICKET_PARAMETER
from telephony.desk.dialer import CallbackDialer
from telephony.server.http import TwilioForm, base_url, services_of, xml
from telephony.server.media import MEDIA_PATH
from telephony.twilio import twiml
from telephony.twilio.signatures import public_host

log = logging.getLogger(__name__)

router = APIRouter(prefix="/twilio")


def call_of(request: Request, form: FormData) -> str:
    """The call a webhook is about: our own `call` query parameter, else Twilio's CallSid."""
    return request.query_params.get("call") or str(form.get("CallSid", ""))


def agent_leg_call_of(request: Request, form: FormData) -> str:
    """The caller's call, for a webhook on the agent's leg (whose own CallSid is the child's)."""
    return request.query_params.get("call") or str(form.get("ParentCallSid", ""))


MAX_ATTEMPT = 1000  # far more transfer attempts than any call makes; a larger number is not ours


def attempt_of(request: Request) -> int:
    """Which transfer attempt a webhook is about (0 when absent, unreadable or impossibly large)."""
    text = request.query_params.get("attempt", "0")
    if not (text.isascii() and text.isdigit()) or len(text) > 4:
        return 0
    return min(int(text), MAX_ATTEMPT)


def fields(form: FormData) -> dict[str, str]:
    return {k: str(v) for k, v in form.items()}


@router.post("/voice", summary="Twilio voice webhook: answer the call and open the media stream")
async def voice(request: Request, form: TwilioForm) -> Response:
    services = services_of(request)
    settings = services.settings
    call_sid = str(form.get("CallSid", ""))
    if not call_sid:
        raise HTTPException(status_code=400, detail="CallSid is missing")
    record = services.registry.open(call_sid)
    if record.caller is None:  # first sight of the call: it began now, by the server's clock
        record.created_at = services.clock().timestamp()
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
        TICKET_PARAMETER: services.tickets.issue(call_sid),  # the one stream that may speak for this call
    }
    base = base_url(request)
    record.base_url = base
    scheme = "wss" if base.startswith("https://") else "ws"
    stream_url = f"{scheme}://{public_host(settings.public_url, request.headers.get('host', ''))}{MEDIA_PATH}"
    log.info("call %s answered; streaming to %s", call_sid, stream_url)
    return xml(twiml.connect_stream(stream_url, base + "/twilio/stream-ended", parameters))


@router.post("/stream-ended", summary="<Connect action>: carry out what the stream decided")
async def stream_ended(request: Request, form: TwilioForm) -> Response:
    desk = services_of(request).desk
    return xml(await desk.stream_ended(call_of(request, form), fields(form), base_url(request)))


@router.post("/whisper", summary="<Number url>: the summary the agent hears, then press 1 to take the call")
async def whisper(request: Request, form: TwilioForm) -> Response:
    desk = services_of(request).desk
    call = agent_leg_call_of(request, form)
    return xml(await desk.transfers.whisper(call, attempt_of(request), fields(form), base_url(request)))


@router.post("/accept", summary="The agent's key after the whisper: 1 bridges the call")
async def accept(request: Request, form: TwilioForm) -> Response:
    desk = services_of(request).desk
    return xml(await desk.transfers.accept(agent_leg_call_of(request, form), attempt_of(request), fields(form)))


@router.post("/dial-status", summary="<Dial action>: the transfer attempt's outcome and the next step")
async def dial_status(request: Request, form: TwilioForm) -> Response:
    desk = services_of(request).desk
    call = call_of(request, form)
    return xml(await desk.transfers.dial_status(call, attempt_of(request), fields(form), base_url(request)))


@router.post("/conference/agent", summary="Conference transfer: the agent answered; a short brief, press 1")
async def conference_agent(request: Request, form: TwilioForm) -> Response:
    conference = services_of(request).desk.transfers.conference
    call = agent_leg_call_of(request, form)
    return xml(await conference.agent_answered(call, attempt_of(request), fields(form), base_url(request)))


@router.post("/conference/accept", summary="Conference transfer: 1 puts the agent into the caller's conference")
async def conference_accept(request: Request, form: TwilioForm) -> Response:
    conference = services_of(request).desk.transfers.conference
    return xml(await conference.accept(agent_leg_call_of(request, form), attempt_of(request), fields(form)))


@router.post("/conference/agent-status", summary="Conference transfer: an agent leg ended; ring the next or move on")
async def conference_agent_status(request: Request, form: TwilioForm) -> Response:
    conference = services_of(request).desk.transfers.conference
    call = agent_leg_call_of(request, form)
    return xml(await conference.agent_status(call, attempt_of(request), fields(form), base_url(request)))


@router.post("/conference/events", summary="Conference statusCallback: who joined or left the caller's conference")
async def conference_events(request: Request, form: TwilioForm) -> Response:
    await services_of(request).desk.transfers.conference.events(call_of(request, form), fields(form))
    return Response(status_code=204)


@router.post("/conference/caller-done", summary="Conference transfer: the caller's <Dial> into the conference ended")
async def conference_caller_done(request: Request, form: TwilioForm) -> Response:
    conference = services_of(request).desk.transfers.conference
    return xml(await conference.caller_done(call_of(request, form), fields(form)))


@router.post("/conference/wait", summary="Conference waitUrl: what the caller hears until the agent joins")
async def conference_wait(request: Request, form: TwilioForm) -> Response:
    return xml(services_of(request).desk.transfers.conference.wait())


@router.post("/enqueue-status", summary="<Enqueue action>: what became of the TaskRouter task")
async def enqueue_status(request: Request, form: TwilioForm) -> Response:
    desk = services_of(request).desk
    return xml(await desk.transfers.enqueue_status(call_of(request, form), fields(form)))


@router.post("/fallback-choice", summary="After a failed transfer: 1 callback, 2 voicemail")
async def fallback_choice(request: Request, form: TwilioForm) -> Response:
    desk = services_of(request).desk
    digits = str(form.get("Digits") or request.query_params.get("Digits") or "")
    return xml(await desk.fallback_choice(call_of(request, form), digits, base_url(request)))


@router.post("/voicemail", summary="<Record action>: the caller's message")
async def voicemail(request: Request, form: TwilioForm) -> Response:
    desk = services_of(request).desk
    return xml(await desk.voicemail.message(call_of(request, form), fields(form)))


@router.post("/recording-status", summary="recordingStatusCallback: the message's recording SID and URL")
async def recording_status(request: Request, form: TwilioForm) -> Response:
    await services_of(request).desk.voicemail.recording_ready(call_of(request, form), fields(form))
    return Response(status_code=204)


# --- the callback dialer's legs ----------------------------------------------------------------------------


def callback_of(request: Request) -> int:
    text = request.query_params.get("callback", "")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # a row id the database can hold
        raise HTTPException(status_code=400, detail="callback id missing or not a callback id")
    return int(text)


def dialer_of(request: Request) -> CallbackDialer:
    dialer = services_of(request).dialer
    if dialer is None:
        raise HTTPException(status_code=404, detail="the callback dialer is off")
    return dialer


@router.post("/callback/agent", summary="Callback dialer: the agent answered; the summary, press 1")
async def callback_agent(request: Request, form: TwilioForm) -> Response:
    return xml(await asyncio.to_thread(dialer_of(request).agent_twiml, callback_of(request)))


@router.post("/callback/agent-accept", summary="Callback dialer: 1 dials the customer (with AMD)")
async def callback_agent_accept(request: Request, form: TwilioForm) -> Response:
    dialer = dialer_of(request)
    digits = str(form.get("Digits", ""))
    return xml(await asyncio.to_thread(dialer.agent_accept_twiml, callback_of(request), digits))


@router.post("/callback/customer", summary="Callback dialer: a machine gets a message, a person is bridged")
async def callback_customer(request: Request, form: TwilioForm) -> Response:
    return xml(dialer_of(request).customer_twiml(callback_of(request), str(form.get("AnsweredBy", ""))))


@router.post("/callback/result", summary="Callback dialer: done, or tried again later")
async def callback_result(request: Request, form: TwilioForm) -> Response:
    return xml(await dialer_of(request).result(callback_of(request), str(form.get("DialCallStatus", ""))))


@router.post("/callback/agent-status", summary="Callback dialer: the agent leg's status")
async def callback_agent_status(request: Request, form: TwilioForm) -> Response:
    if str(form.get("CallStatus")) in ("busy", "no-answer", "failed", "canceled"):
        await asyncio.to_thread(
            services_of(request).store.mark_callback,
            callback_of(request),
            "requested",
            f"agent leg {form.get('CallStatus')}; will try again",
        )
    return Response(status_code=204)
