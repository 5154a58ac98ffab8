"""The handoff desk: carries out what a call's dialog decided, through Twilio, and keeps the record.

It moves the live call to the queue's first target with the REST API (falling back to the `<Connect action>`
when REST is not configured or fails), answers every webhook that follows (whisper, accept, dial status,
enqueue, fallback choice, voicemail, recording status) with TwiML, and stores each step. Every webhook is
idempotent on its SIDs: a repeated callback is answered the same way and stored once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from dialogs.package import HandoffPackage, fallback_package
from dialogs.routing import QueueConfig, Target
from telephony import transfer, twiml
from telephony.delivery import HandoffDeliverer
from telephony.errors import TransferError
from telephony.records import CallRecord, CallRegistry, Decision
from telephony.rest import TwilioRest
from telephony.settings import Settings
from telephony.store import Store
from telephony.voicemail_text import transcribe_wav
from voice.errors import VoiceError
from voice.stt import RecognizerFactory

log = logging.getLogger(__name__)
T = TypeVar("T")

SORRY_TRANSFER = "Sorry, something went wrong on our side. I'm putting you through to a person now."
CALLBACK_SET = "Thanks. We'll call you back at this number as soon as someone is free. Goodbye."
VOICEMAIL_THANKS = "Thanks, your message is saved with your details. We'll call you back. Goodbye."
NO_MESSAGE = "I didn't get a message, so we'll call you back instead. Goodbye."
WINDOW_HOURS = {"morning": (8, 12), "afternoon": (12, 17), "evening": (17, 21), "soon": (0, 24)}
HANDOFF_STATUS = {"transfer": "transferring", "callback": "callback", "voicemail": "voicemail", "ticket": "ticket"}


def due_at(window: str | None, queue: QueueConfig | None, now: datetime) -> datetime:
    """The first hour in the caller's window when the queue is open (within a week; else in an hour)."""
    start, end = WINDOW_HOURS.get(window or "soon", (0, 24))
    moment = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if window in (None, "soon") and (queue is None or queue.hours.open_at(now)):
        return now + timedelta(minutes=15)
    for _ in range(24 * 8):
        local_hour = moment.astimezone(_zone(queue)).hour
        if start <= local_hour < end and (queue is None or queue.hours.open_at(moment)):
            return moment
        moment += timedelta(hours=1)
    return now + timedelta(hours=1)


def _zone(queue: QueueConfig | None) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(queue.hours.tz if queue is not None else "UTC")


class HandoffDesk:
    """Everything after the dialog decides: routing targets, transfers, callbacks, voicemail, the record."""

    def __init__(
        self,
        settings: Settings,
        registry: CallRegistry,
        queues: list[QueueConfig],
        *,
        store: Store | None = None,
        rest: TwilioRest | None = None,
        deliverer: HandoffDeliverer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.queues = {q.name: q for q in queues}
        self.store = store
        self.rest = rest
        self.deliverer = deliverer
        self.clock = clock
        self._delivered: set[str] = set()
        self.transcriber: RecognizerFactory | None = None  # set when a vosk model is loaded

    # --- plumbing ------------------------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run a store method off the event loop; without a store, nothing is persisted (memory only)."""
        if self.store is None:
            return None
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def first_time(self, call_sid: str, kind: str, key: str, detail: Mapping[str, object]) -> bool:
        """Log a Twilio callback; False when this exact callback was seen before (a repeat)."""
        record = self.registry.get(call_sid)
        if record is not None:
            record.note(
                record.timeline[-1].t_ms if record.timeline else 0, kind, **{k: str(v) for k, v in detail.items()}
            )
        if self.store is None:
            seen: set[str] = record.outcome.setdefault("_seen", set()) if record else set()  # type: ignore[assignment]
            new = key not in seen
            seen.add(key)
            return new
        return bool(await self._db(self.store.log_event, call_sid, kind, dict(detail), idempotency_key=key))

    async def save(self, record: CallRecord) -> None:
        if self.store is not None:
            await self._db(self.store.save_call, record)

    def targets(self, decision: Decision) -> list[Target]:
        raw = decision.routing.get("targets") or []
        targets = [Target.model_validate(t) for t in raw] if isinstance(raw, list) else []
        return targets or [Target(kind="phone", number=self.settings.transfer_number)]

    def queue_of(self, decision: Decision) -> QueueConfig | None:
        name = str(decision.routing.get("queue") or (decision.package.recommended_queue if decision.package else ""))
        return self.queues.get(name)

    def urls(self, base: str, call_sid: str) -> transfer.Urls:
        return transfer.Urls(base=base, call_sid=call_sid)

    # --- when the dialog decides ------------------------------------------------------------------------------

    async def decided(self, record: CallRecord) -> None:
        """Persist the decision (a callback request too) and send the package to the help desk, once."""
        decision = record.decision
        if decision is None or decision.package is None:
            await self.save(record)
            return
        package = decision.package
        await self.save(record)
        if self.store is not None:
            await self._db(
                self.store.save_handoff,
                record.call_sid,
                package,
                decision.routing,
                HANDOFF_STATUS.get(decision.mode, "pending"),
            )
        if decision.mode == "callback":
            await self.request_callback(
                record.call_sid,
                decision.callback_number or record.caller,
                decision.callback_window,
                package,
                decision,
                note="asked for by the caller",
            )
        if self.deliverer is not None and package.handoff_id not in self._delivered:
            self._delivered.add(package.handoff_id)
            payload = {
                "event": "handoff",
                "mode": decision.mode,
                "routing": decision.routing,
                "package": package.model_dump(mode="json"),
                "ticket_note": package.ticket_note(),
            }
            self.deliverer.deliver_in_background(package.handoff_id, payload)

    async def request_callback(
        self,
        call_sid: str,
        number: str | None,
        window: str | None,
        package: HandoffPackage | None,
        decision: Decision | None,
        *,
        note: str,
    ) -> None:
        record = self.registry.open(call_sid)
        queue = self.queue_of(decision) if decision else None
        when = due_at(window, queue, self.clock())
        record.outcome["callback"] = {
            "number": number or "",
            "window": window or "soon",
            "due_at": when.isoformat(),
            "note": note,
        }
        if self.store is not None and number:
            await self._db(
                self.store.add_callback,
                call_sid,
                package.handoff_id if package else None,
                number,
                window or "soon",
                when,
            )
            if package is not None:
                await self._db(self.store.set_handoff_status, package.handoff_id, "callback")

    async def move_live_call(self, record: CallRecord, base: str) -> bool:
        """Warm transfer with REST: give the live call its new TwiML now. False: use `<Connect action>`."""
        decision = record.decision
        if self.rest is None or decision is None or decision.package is None:
            return False
        document = self.twiml_for(record, decision, base)
        # Marked before the request: Twilio stops the stream as soon as it accepts the update, which can be
        # before the response reaches us, and that `stop` must not read as the caller hanging up.
        record.outcome["moved_by"] = "rest"
        try:
            await asyncio.to_thread(self.rest.redirect_call, record.call_sid, document)
        except TransferError as exc:
            record.outcome.pop("moved_by", None)
            log.warning("REST transfer of %s failed (%s); falling back to <Connect action>", record.call_sid, exc)
            record.note(decision.decided_ms, "rest_transfer_failed", error=str(exc)[:200])
            return False
        record.note(decision.decided_ms, "rest_transfer", mode=decision.mode)
        await self.save(record)
        return True

    def twiml_for(self, record: CallRecord, decision: Decision, base: str, *, say_first: str | None = None) -> str:
        """The TwiML that carries out a decision: dial the first target, record a message, or say goodbye."""
        urls = self.urls(base, record.call_sid)
        if decision.kind == "end" or decision.package is None:
            return twiml.say_and_hang_up("Goodbye.") if say_first else twiml.hang_up()
        if decision.mode == "voicemail":
            return transfer.voicemail_twiml(urls, say_first)
        if decision.mode in ("callback", "ticket"):
            return twiml.hang_up()
        target = self.targets(decision)[0]
        record.outcome.update({"kind": "transfer", "attempt": 0, "target": target.describe()})
        return transfer.transfer_twiml(
            target,
            0,
            decision.package,
            urls,
            caller_id=self.settings.transfer_caller_id,
            timeout_s=self.settings.transfer_timeout_s,
            say_first=say_first,
        )

    # --- webhooks -----------------------------------------------------------------------------------------------

    async def stream_ended(self, call_sid: str, form: Mapping[str, str], base: str) -> str:
        record = self.registry.get(call_sid)
        if record is None and self.store is not None:  # a restart mid-call: the stored record carries on
            record = await self._db(self.store.load_call, call_sid)
            if record is not None:
                self.registry.adopt(record)
        if form.get("CallStatus") == "completed" or (record is not None and record.stream_end == "caller_stop"):
            if record is not None and record.decision is not None and record.decision.package is not None:
                await self.caller_gone(record, "the caller hung up before the handoff was carried out")
            return twiml.hang_up()
        if record is not None and record.outcome.get("moved_by") == "rest":
            return twiml.hang_up()  # the call was already moved; this request should not come, and changes nothing
        decision = record.decision if record is not None else None
        say_first = None
        if decision is None:  # the stream broke without a decision; the caller is still there
            record = record or self.registry.open(call_sid)
            record.caller = record.caller or form.get("From") or None
            package = fallback_package(
                call_sid,
                caller=record.caller,
                transcript=record.transcript(),
                trigger="stream_lost",
                detail="The bot's audio connection ended before it decided anything.",
                queue="general" if "general" in self.queues else next(iter(self.queues), "support"),
            )
            decision = record.decision = Decision(kind="handoff", reason="stream_lost", decided_ms=0, package=package)
            say_first = SORRY_TRANSFER
            await self.decided(record)
        document = self.twiml_for(record, decision, base, say_first=say_first)
        if decision.mode in ("callback", "ticket") or decision.kind == "end":
            record.outcome.setdefault("kind", decision.mode if decision.kind == "handoff" else "hangup")
        await self.save(record)
        return document

    async def ended(self, record: CallRecord) -> None:
        """The media stream is over: store the final record; a caller who hung up mid-handoff gets a callback."""
        decision = record.decision
        moved = record.outcome.get("moved_by") == "rest"
        if moved and record.stream_end == "caller_stop":
            record.stream_end = "transferred"
        elif record.stream_end == "caller_stop" and decision is not None and decision.package is not None:
            await self.caller_gone(record, "the caller hung up while the handoff was being announced")
        await self.save(record)

    async def caller_gone(self, record: CallRecord, note: str) -> None:
        """The caller left before a person took the call: keep the package and call them back."""
        decision = record.decision
        if decision is None or decision.package is None or record.outcome.get("callback"):
            return
        record.outcome["caller_gone"] = True
        await self.request_callback(record.call_sid, record.caller, "soon", decision.package, decision, note=note)
        if self.store is not None:
            await self._db(self.store.set_handoff_status, decision.package.handoff_id, "caller_hung_up")

    async def whisper(self, call_sid: str, attempt: int, form: Mapping[str, str], base: str) -> str:
        record = self.registry.get(call_sid)
        decision = record.decision if record is not None else None
        if record is None or decision is None or decision.package is None:
            return twiml.say_and_hang_up("Incoming call from the phone bot. No summary is available.")
        answered_by = form.get("AnsweredBy", "")
        if answered_by.startswith("machine"):  # the agent's voicemail: no briefing into a machine
            record.outcome.setdefault("answered_by", {})[str(attempt)] = answered_by
            return twiml.hang_up()
        if record.outcome.get("caller_gone"):
            return transfer.accept_twiml("", caller_gone=True)
        record.outcome["whisper"] = decision.package.whisper()
        return transfer.whisper_twiml(decision.package, self.urls(base, call_sid).of("/twilio/accept", attempt=attempt))

    async def accept(self, call_sid: str, attempt: int, form: Mapping[str, str]) -> str:
        record = self.registry.get(call_sid)
        digits = form.get("Digits", "")
        gone = record is None or bool(record.outcome.get("caller_gone"))
        if record is not None and digits == "1" and not gone:
            record.outcome.setdefault("accepted", []).append(attempt)
            await self.first_time(call_sid, "whisper_accepted", f"{call_sid}:accepted:{attempt}", {"attempt": attempt})
        return transfer.accept_twiml(digits, caller_gone=gone)

    async def dial_status(self, call_sid: str, attempt: int, form: Mapping[str, str], base: str) -> str:
        record = self.registry.get(call_sid)
        if record is None or record.decision is None or record.decision.package is None:
            return twiml.hang_up()
        decision = record.decision
        targets = self.targets(decision)
        target = targets[min(attempt, len(targets) - 1)]
        status = form.get("DialCallStatus", "")
        caller_gone = form.get("CallStatus") == "completed" and form.get("DialBridged") != "true"
        outcome = transfer.outcome_of(
            status,
            accepted=attempt in record.outcome.get("accepted", []),
            whisper=target.kind == "phone",
            caller_gone=caller_gone,
            answered_by=record.outcome.get("answered_by", {}).get(str(attempt)),
        )
        step = transfer.next_step(outcome, attempt, len(targets))
        first = await self.first_time(
            call_sid,
            "dial_status",
            f"{call_sid}:dial:{attempt}",
            {"attempt": attempt, "status": status, "outcome": outcome.value},
        )
        if first:
            record.outcome.setdefault("attempts", []).append(
                {"attempt": attempt, "target": target.describe(), "dial_status": status, "outcome": outcome.value}
            )
            await self._db(
                self.store.record_dial_attempt,
                call_sid,
                decision.package.handoff_id,
                attempt,
                target.kind,
                target.describe(),
                dial_call_sid=form.get("DialCallSid") or None,
                outcome=outcome.value,
                dial_status=status,
                duration_s=int(form.get("DialCallDuration") or 0),
            ) if self.store else None
        record.outcome["dial_status"] = status
        record.outcome["last_outcome"] = outcome.value
        if step is transfer.NextStep.DONE:
            if first and self.store is not None:
                await self._db(self.store.set_handoff_status, decision.package.handoff_id, "bridged")
            await self.save(record)
            return twiml.hang_up()
        if step is transfer.NextStep.SCHEDULE_CALLBACK:
            if form.get("DialCallSid") and self.rest is not None:  # no agent is briefed into an empty call
                await self.cancel_agent_leg(
                    form["DialCallSid"], in_progress=status in ("completed", "in-progress", "canceled")
                )
            await self.caller_gone(record, "the caller hung up while the agent's phone rang or heard the whisper")
            await self.save(record)
            return twiml.hang_up()
        urls = self.urls(base, call_sid)
        if step is transfer.NextStep.NEXT_TARGET:
            nxt = targets[attempt + 1]
            record.outcome.update({"attempt": attempt + 1, "target": nxt.describe()})
            await self.save(record)
            return transfer.transfer_twiml(
                nxt,
                attempt + 1,
                decision.package,
                urls,
                caller_id=self.settings.transfer_caller_id,
                timeout_s=self.settings.transfer_timeout_s,
                say_first="Still trying to reach someone. Please hold.",
            )
        if self.store is not None and first:
            await self._db(self.store.set_handoff_status, decision.package.handoff_id, "failed")
        await self.save(record)
        queue = self.queue_of(decision)
        team = (queue.name if queue else decision.package.recommended_queue).replace("_", " ")
        return transfer.offer_callback_or_voicemail(urls, team)

    async def cancel_agent_leg(self, agent_sid: str, *, in_progress: bool) -> None:
        assert self.rest is not None
        try:
            await asyncio.to_thread(self.rest.cancel_leg, agent_sid, in_progress)
        except TransferError as exc:
            log.warning("could not cancel agent leg %s: %s", agent_sid, exc)

    async def enqueue_status(self, call_sid: str, form: Mapping[str, str]) -> str:
        record = self.registry.get(call_sid)
        result = form.get("QueueResult", "")
        if record is not None:
            record.outcome["queue_result"] = result
            first = await self.first_time(call_sid, "enqueue_status", f"{call_sid}:enqueue", {"result": result})
            if first and self.store is not None and record.decision and record.decision.package:
                status = "bridged" if result in ("bridged", "bridging-in-process") else "failed"
                await self._db(self.store.set_handoff_status, record.decision.package.handoff_id, status)
            await self.save(record)
        if result in ("bridged", "bridging-in-process", "hangup"):
            return twiml.hang_up()
        return twiml.say_and_hang_up(CALLBACK_SET)

    async def fallback_choice(self, call_sid: str, digits: str, base: str) -> str:
        """After a failed transfer: 2 records a message; 1, or no answer, schedules a callback."""
        record = self.registry.open(call_sid)
        decision = record.decision
        if digits == "2":
            record.outcome["fallback"] = "voicemail"
            return transfer.voicemail_twiml(self.urls(base, call_sid), "After the tone, please leave your message.")
        record.outcome["fallback"] = "callback"
        package = decision.package if decision else None
        await self.request_callback(
            call_sid,
            record.caller,
            "soon",
            package,
            decision,
            note="the transfer failed; the caller chose a callback"
            if digits == "1"
            else "the transfer failed; no choice made, so a callback",
        )
        await self.save(record)
        return twiml.say_and_hang_up(CALLBACK_SET)

    async def voicemail(self, call_sid: str, form: Mapping[str, str], base: str) -> str:
        record = self.registry.open(call_sid)
        duration = int(form.get("RecordingDuration") or 0)
        handoff_id = record.decision.package.handoff_id if record.decision and record.decision.package else None
        if duration <= 0 or form.get("RecordingUrl") is None:
            decision = record.decision
            await self.request_callback(
                call_sid,
                record.caller,
                "soon",
                decision.package if decision else None,
                decision,
                note="no voicemail was left",
            )
            return twiml.say_and_hang_up(NO_MESSAGE)
        record.outcome["voicemail"] = {"url": form.get("RecordingUrl"), "duration_s": duration}
        await self._db(
            self.store.save_voicemail, call_sid, handoff_id, recording_url=form.get("RecordingUrl"), duration_s=duration
        ) if self.store else None
        if self.store is not None and handoff_id:
            await self._db(self.store.set_handoff_status, handoff_id, "voicemail")
        await self.save(record)
        return twiml.say_and_hang_up(VOICEMAIL_THANKS)

    async def recording_status(self, call_sid: str, form: Mapping[str, str]) -> None:
        """The recording is ready: store its SID, URL and duration; with a vosk model, add its text."""
        record = self.registry.open(call_sid)
        handoff_id = record.decision.package.handoff_id if record.decision and record.decision.package else None
        recording_sid = form.get("RecordingSid") or None
        duration = int(form.get("RecordingDuration") or 0)
        voicemail = record.outcome.setdefault("voicemail", {})
        voicemail.update({"recording_sid": recording_sid, "url": form.get("RecordingUrl"), "duration_s": duration})
        if self.store is not None:
            await self._db(
                self.store.save_voicemail,
                call_sid,
                handoff_id,
                recording_sid=recording_sid,
                recording_url=form.get("RecordingUrl"),
                duration_s=duration,
            )
        if self.transcriber is not None and self.rest is not None and form.get("RecordingUrl"):
            text = await self._transcribe(form["RecordingUrl"], recording_sid or call_sid)
            if text:
                voicemail["transcript"] = text
                if self.store is not None:
                    await self._db(
                        self.store.save_voicemail, call_sid, handoff_id, recording_sid=recording_sid, transcript=text
                    )

    async def _transcribe(self, url: str, key: str) -> str | None:
        """Fetch the recording and transcribe it offline; a failure leaves the voicemail without text."""
        assert self.rest is not None and self.transcriber is not None
        try:
            wav = await asyncio.to_thread(self.rest.fetch_recording, url)
            return await asyncio.to_thread(transcribe_wav, wav, self.transcriber, key)
        except (TransferError, VoiceError, OSError) as exc:
            log.warning("could not transcribe voicemail %s: %s", key, exc)
            return None
