"""The handoff desk: everything after a call's dialog decides, seen from the call as one `DecisionHandler`.

It keeps the decision (and sends the package to the help desk) the moment it is made, has the live call
moved with REST or answers `<Connect action>`, and keeps the final record when the stream ends. The jobs
themselves live beside it: `transfers` (dials and their callbacks), `callbacks`, `voicemail`, and
`delivery` (the help desk's webhooks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Mapping

from dialogs.pack import BotPack
from dialogs.package import EscalationReason
from dialogs.summary import fallback_package
from telephony.calls.metrics import Metrics
from telephony.calls.records import CallDecision, CallRecord
from telephony.desk.callbacks import Callbacks
from telephony.desk.delivery import HandoffDeliverer
from telephony.desk.ledger import Ledger
from telephony.desk.transfers import Transfers, record_message
from telephony.desk.voicemail import Voicemails
from telephony.store.call_records import handoff_routing
from telephony.twilio import twiml
from telephony.twilio.twiml import Urls

log = logging.getLogger(__name__)

HANDOFF_STATUS = {"transfer": "transferring", "callback": "callback", "voicemail": "voicemail", "ticket": "ticket"}


class HandoffDesk:
    """Carries out what calls decided: decision, REST move or `<Connect action>`, and the end of the stream."""

    def __init__(
        self,
        ledger: Ledger,
        pack: BotPack,
        transfers: Transfers,
        callbacks: Callbacks,
        voicemail: Voicemails,
        deliverer: HandoffDeliverer | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics if metrics is not None else ledger.metrics
        self.pack = pack
        self.transfers = transfers
        self.callbacks = callbacks
        self.voicemail = voicemail
        self.deliverer = deliverer
        self._delivered: set[str] = set()

    async def save(self, record: CallRecord) -> None:
        await self.ledger.save(record)

    # --- the call's side (`telephony.calls.ports.DecisionHandler`) ---------------------------------------------

    def keep(self, record: CallRecord) -> None:
        self.ledger.keep(record)  # spooled before this returns; the call's path has nothing to wait for

    async def decided(self, record: CallRecord) -> None:
        """Send the package to the help desk (once), and persist the decision (a callback request too).

        The help desk comes first and does not wait on the store: a locked or broken database delays the
        stored copy (the outbox retries it), never the package.
        """
        decision = record.decision
        if decision is not None and decision.package is not None and self.deliverer is not None:
            package = decision.package
            if package.handoff_id not in self._delivered:
                self._delivered.add(package.handoff_id)
                payload = {
                    "event": "handoff",
                    "mode": decision.mode,
                    "routing": decision.routing.model_dump(mode="json") if decision.routing else {},
                    "package": package.model_dump(mode="json"),
                    "ticket_note": package.ticket_note(),
                }
                self.deliverer.deliver_in_background(package.handoff_id, payload)
        await self.ledger.save(record)
        if decision is None or decision.package is None:
            return
        package = decision.package
        store = self.ledger.store
        if store is not None:
            status = HANDOFF_STATUS[decision.mode]
            await self.ledger.write(
                record.call_sid, store.save_handoff, record.call_sid, package, handoff_routing(decision), status
            )
        targets = self.transfers.targets(decision)
        if self.transfers.conference.applies(decision, targets) and record.base_url:
            # ring the agent now, while the caller hears the announcement: they are briefed in parallel
            await self.transfers.conference.ring(record, targets, 0, record.base_url)
        if decision.mode == "callback":
            callback = decision.callback
            number = (callback.number if callback else None) or record.caller
            window = callback.window if callback and callback.window != "soon" else None
            await self.callbacks.request(record, number, window, package, note="asked for by the caller")

    async def ready_to_move(self, record: CallRecord, announced: Awaitable[object]) -> None:
        await self.transfers.conference.ready_to_move(record, announced)

    async def carry_out(self, record: CallRecord) -> bool:
        """The stream decided: move the live call with REST now (False: `<Connect action>` will carry it out)."""
        if not record.base_url:
            return False
        return await self.transfers.move_live_call(record, record.base_url)

    async def ended(self, record: CallRecord) -> None:
        """The media stream is over: store the final record; a caller who hung up mid-handoff gets a callback."""
        decision = record.decision
        if record.progress.moved_by_rest and record.stream_end == "caller_stop":
            record.stream_end = "transferred"
        elif record.stream_end == "caller_stop" and decision is not None and decision.package is not None:
            await self.callbacks.caller_gone(record, "the caller hung up while the handoff was being announced")
        await self.ledger.save(record)

    # --- Twilio's side: `<Connect action>` and the caller's choice after a failed transfer ----------------------

    async def stream_ended(self, call_sid: str, form: Mapping[str, str], base: str) -> str:
        """`<Connect action>`: carry out what the stream decided; a stream that broke first goes to a person."""
        record = await self.ledger.find(call_sid)
        if form.get("CallStatus") == "completed" or (record is not None and record.stream_end == "caller_stop"):
            if record is not None and record.decision is not None and record.decision.package is not None:
                await self.callbacks.caller_gone(record, "the caller hung up before the handoff was carried out")
            return twiml.hang_up()
        if record is not None and record.progress.moved_by_rest:
            return twiml.hang_up()  # the call was already moved; this request should not come, and changes nothing
        decision = record.decision if record is not None else None
        say_first = None
        if record is None or decision is None:  # the stream broke without a decision; the caller is still there
            record = record or self.ledger.open(call_sid)
            record.caller = record.caller or form.get("From") or None
            reason = EscalationReason(
                category="workflow_exception", trigger="stream_lost", detail=self.pack.reason("stream_lost")
            )
            package = fallback_package(
                self.pack, call_sid, caller=record.caller, transcript=record.transcript(), reason=reason
            )
            decision = record.decision = CallDecision(
                kind="handoff", reason="stream_lost", decided_ms=0, decided_at=time.time(), package=package
            )
            self.metrics.handoff(reason.category, reason.trigger, package.recommended_queue)
            say_first = self.pack.after_stream.sorry_transfer
            await self.decided(record)
        document = self.transfers.twiml_for(record, decision, base, say_first=say_first)
        if decision.kind == "end":
            record.progress.kind = record.progress.kind or "hangup"
        elif decision.mode in ("callback", "ticket"):
            record.progress.kind = record.progress.kind or decision.mode
        await self.ledger.save(record)
        return document

    async def fallback_choice(self, call_sid: str, digits: str, base: str) -> str:
        """After a failed transfer: 2 records a message; 1, or no answer, schedules a callback."""
        record = await self.ledger.find(call_sid) or self.ledger.open(call_sid)
        words = self.pack.after_stream
        if digits == "2":
            record.progress.fallback = "voicemail"
            return record_message(Urls(base, call_sid), words.leave_message, self.pack.say_language)
        record.progress.fallback = "callback"
        package = record.decision.package if record.decision else None
        note = (
            "the transfer failed; the caller chose a callback"
            if digits == "1"
            else "the transfer failed; no choice made, so a callback"
        )
        await self.callbacks.request(record, record.caller, None, package, note=note)
        await self.ledger.save(record)
        return twiml.say_and_hang_up(words.callback_set, self.pack.say_language)
