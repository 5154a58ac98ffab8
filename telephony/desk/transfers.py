"""Live transfers: move the call to the queue's first target, brief the agent, and take each `<Dial action>`
callback to its defined next step (the next target, a callback or voicemail offer, or a callback for a caller
who hung up). Every callback is idempotent on its SIDs: a repeat is answered the same way and stored once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from dialogs.pack import BotPack
from dialogs.routing import Target
from dialogs.summary import whisper
from telephony.calls.metrics import Metrics
from telephony.calls.records import CallDecision, CallRecord
from telephony.desk.attempts import nobody_took_it, reached_person, record_attempt
from telephony.desk.briefing import brief_agent
from telephony.desk.callbacks import Callbacks
from telephony.desk.conference import ConferenceTransfers
from telephony.desk.ledger import Ledger
from telephony.desk.outcomes import NextStep, next_step, outcome_of
from telephony.desk.targets import TransferConfig, transfer_twiml
from telephony.twilio import twiml
from telephony.twilio.errors import TransferError
from telephony.twilio.rest import TwilioRest
from telephony.twilio.twiml import Urls

log = logging.getLogger(__name__)


class Transfers:
    """Carries a handoff to a person through Twilio: REST or `<Connect action>`, then the dial callbacks."""

    def __init__(
        self,
        ledger: Ledger,
        pack: BotPack,
        config: TransferConfig,
        callbacks: Callbacks,
        rest: TwilioRest | None,
        metrics: Metrics | None = None,
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics if metrics is not None else ledger.metrics
        self.conference = ConferenceTransfers(
            ledger, pack, config, callbacks, rest if config.conference else None, self.metrics, self.targets
        )
        self.pack = pack
        self.queues = {q.name: q for q in pack.queues}
        self.config = config
        self.callbacks = callbacks
        self.rest = rest
        self.language = pack.say_language

    def targets(self, decision: CallDecision) -> list[Target]:
        """Who to ring, in order: the routed queue's targets as configured (with their credentials)."""
        routing = decision.routing
        name = (
            routing.queue if routing is not None else (decision.package.recommended_queue if decision.package else "")
        )
        queue = self.queues.get(name)
        targets = list(queue.targets) if queue is not None else list(routing.targets if routing else ())
        return targets or [Target(kind="phone", number=self.config.default_number)]

    def apology_transfer(self, base: str) -> str:
        """TwiML for when something inside failed: an apology, then the default number."""
        ring = twiml.Ring(
            action_url=base + "/twilio/dial-status",
            whisper_url=None,
            caller_id=self.config.caller_id,
            timeout_s=self.config.ring_timeout_s,
            say_first=self.pack.after_stream.sorry_transfer,
            language=self.language,
        )
        return twiml.dial_number(self.config.default_number, ring)

    async def move_live_call(self, record: CallRecord, base: str) -> bool:
        """Warm transfer with REST: give the live call its new TwiML now. False: use `<Connect action>`."""
        decision = record.decision
        if self.rest is None or decision is None or decision.package is None:
            return False
        document = self.twiml_for(record, decision, base)
        # Marked before the request: Twilio stops the stream as soon as it accepts the update, which can be
        # before the response reaches us, and that `stop` must not read as the caller hanging up.
        record.progress.moved_by_rest = True
        try:
            await asyncio.to_thread(self.rest.redirect_call, record.call_sid, document)
        except TransferError as exc:
            record.progress.moved_by_rest = False
            log.warning("REST transfer of %s failed (%s); falling back to <Connect action>", record.call_sid, exc)
            record.note(decision.decided_ms, "rest_transfer_failed", error=str(exc)[:200])
            return False
        record.note(decision.decided_ms, "rest_transfer", mode=decision.mode)
        await self.ledger.save(record)
        return True

    def twiml_for(self, record: CallRecord, decision: CallDecision, base: str, *, say_first: str | None = None) -> str:
        """The TwiML that carries out a decision: dial the first target, record a message, or hang up."""
        urls = Urls(base=base, call_sid=record.call_sid)
        if decision.kind == "end" or decision.package is None:
            return twiml.hang_up()
        if decision.mode == "voicemail":
            return record_message(urls, say_first, self.language)
        if decision.mode in ("callback", "ticket"):
            return twiml.hang_up()
        targets = self.targets(decision)
        if self.conference.applies(decision, targets) and record.progress.agent_legs:
            return self.conference.caller_twiml(record, base, say_first=say_first)
        target = targets[0]
        if decision.routing is None and say_first is None:  # a call that broke: the caller heard no announcement
            say_first = self.pack.after_stream.sorry_transfer
        record.progress.kind, record.progress.attempt, record.progress.target = "transfer", 0, target.describe()
        return transfer_twiml(
            target, 0, decision.package, urls, self.config, say_first=say_first, language=self.language
        )

    async def whisper(self, call_sid: str, attempt: int, form: Mapping[str, str], base: str) -> str:
        """The agent's leg answered: brief them (press 1 to take the call); a machine or a gone caller is not."""
        words = self.pack.agent
        return await brief_agent(
            self.ledger, call_sid, attempt, form.get("AnsweredBy", ""), words, summary=whisper,
            press=words.press_one, accept_url=Urls(base, call_sid).of("/twilio/accept", attempt=attempt),
            language=self.language,
        )  # fmt: skip

    async def accept(self, call_sid: str, attempt: int, form: Mapping[str, str]) -> str:
        """The agent's key: 1 bridges (an empty response ends the whisper); anything else passes the call on."""
        record = await self.ledger.find(call_sid)
        digits = form.get("Digits", "")
        gone = record is None or record.progress.caller_gone
        if gone:
            return twiml.say_and_hang_up(self.pack.agent.caller_gone, self.language)
        if record is not None and digits == "1":
            record.progress.accepted.append(attempt)
            await self.ledger.save(record)  # the dial's end, perhaps on another instance, reads the acceptance
            first = await self.ledger.first_time(
                call_sid, "whisper_accepted", f"{call_sid}:accepted:{attempt}", {"attempt": attempt}
            )
            if first:  # the empty answer below bridges the caller now
                reached_person(self.metrics, record, time.time())
            return twiml.bridge()
        return twiml.hang_up()

    async def dial_status(self, call_sid: str, attempt: int, form: Mapping[str, str], base: str) -> str:
        """One attempt is over: store its typed outcome, then its next step."""
        record = await self.ledger.find(call_sid)
        decision = record.decision if record is not None else None
        package = decision.package if decision is not None else None
        if record is None or decision is None or package is None:
            return twiml.hang_up()
        progress = record.progress
        targets = self.targets(decision)
        target = targets[min(attempt, len(targets) - 1)]
        status = form.get("DialCallStatus", "")
        caller_gone = form.get("CallStatus") == "completed" and form.get("DialBridged") != "true"
        outcome = outcome_of(
            status,
            accepted=attempt in progress.accepted,
            whisper=target.kind != "taskrouter",  # every <Dial> target hears the whisper and must press 1
            caller_gone=caller_gone,
            answered_by=progress.answered_by.get(attempt),
        )
        step = next_step(outcome, attempt, len(targets))
        first = await record_attempt(
            self.ledger, self.metrics, record, package, attempt, target, status=status, outcome=outcome,
            leg_sid=form.get("DialCallSid"), duration=form.get("DialCallDuration"),
        )  # fmt: skip
        if step is NextStep.DONE:
            if first:
                await self.ledger.set_handoff_status(package.handoff_id, "bridged")
            await self.ledger.save(record)
            return twiml.hang_up()
        if step is NextStep.SCHEDULE_CALLBACK:
            if form.get("DialCallSid") and self.rest is not None:  # no agent is briefed into an empty call
                in_progress = status in ("completed", "in-progress", "canceled")
                await self.cancel_agent_leg(form["DialCallSid"], in_progress=in_progress)
            await self.callbacks.caller_gone(
                record, "the caller hung up while the agent's phone rang or heard the whisper"
            )
            await self.ledger.save(record)
            return twiml.hang_up()
        urls = Urls(base=base, call_sid=call_sid)
        if step is NextStep.NEXT_TARGET:
            nxt = targets[attempt + 1]
            progress.attempt, progress.target = attempt + 1, nxt.describe()
            await self.ledger.save(record)
            still = self.pack.after_stream.still_trying
            return transfer_twiml(nxt, attempt + 1, package, urls, self.config, say_first=still, language=self.language)
        if first:
            await self.ledger.set_handoff_status(package.handoff_id, "failed")
        await self.ledger.save(record)
        return nobody_took_it(self.pack, self.callbacks, record, package, urls, self.language)

    async def cancel_agent_leg(self, agent_sid: str, *, in_progress: bool) -> None:
        if self.rest is None:
            return
        try:
            await asyncio.to_thread(self.rest.cancel_leg, agent_sid, in_progress)
        except TransferError as exc:
            log.warning("could not cancel agent leg %s: %s", agent_sid, exc)

    async def enqueue_status(self, call_sid: str, form: Mapping[str, str]) -> str:
        """What became of the TaskRouter task: bridged, or the caller gets a callback."""
        record = await self.ledger.find(call_sid)
        result = form.get("QueueResult", "")
        if record is not None:
            record.progress.queue_result = result
            first = await self.ledger.first_time(call_sid, "enqueue_status", f"{call_sid}:enqueue", {"result": result})
            if first and record.decision and record.decision.package:
                status = "bridged" if result in ("bridged", "bridging-in-process") else "failed"
                await self.ledger.set_handoff_status(record.decision.package.handoff_id, status)
            await self.ledger.save(record)
        if result in ("bridged", "bridging-in-process", "hangup"):
            return twiml.hang_up()
        if record is not None and record.decision is not None and record.decision.package is not None:
            note = f"the queue could not place the call ({result or 'no result'})"
            await self.callbacks.request(record, record.caller, None, record.decision.package, note=note)
            await self.ledger.save(record)
        return twiml.say_and_hang_up(self.pack.after_stream.callback_set, self.language)


def record_message(urls: Urls, intro: str | None, language: str | None) -> str:
    """Record the caller's message; both Twilio callbacks carry the call."""
    return twiml.record_message(
        urls.of("/twilio/voicemail"), urls.of("/twilio/recording-status"), intro=intro, language=language
    )
