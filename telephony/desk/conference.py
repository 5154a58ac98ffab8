"""A warm transfer that briefs the agent while the caller is told what happens next (`transfer_mode=conference`).

At the decision the agent's phone is rung at once (REST `calls.create`), in parallel with the bot's
announcement; the agent hears a short brief and presses 1 (the card is on the console). The caller, once the
announcement ends, is moved by REST into a conference of their own and waits there. The agent who presses 1
enters the conference and starts it: the two are bridged. A decline, no answer, busy line or voicemail rings
the next target; after the last, the caller is moved out with one clear sentence and offered a callback or a
message. If the caller hangs up first, the ringing agent leg is cancelled: no agent is briefed into an empty
call. The `<Dial>` and REST-redirect transfers stay for targets a conference cannot ring (SIP, TaskRouter).

What Twilio behaviour this relies on is listed, with sources and what is unverified, in docs/CONFERENCE.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from dialogs.pack import BotPack
from dialogs.routing import Target
from dialogs.summary import brief
from telephony.calls.metrics import Metrics
from telephony.calls.records import CallDecision, CallRecord
from telephony.desk.attempts import nobody_took_it, reached_person, record_attempt
from telephony.desk.briefing import brief_agent
from telephony.desk.callbacks import Callbacks
from telephony.desk.ledger import Ledger
from telephony.desk.outcomes import NextStep, next_step, outcome_of
from telephony.desk.targets import TransferConfig
from telephony.store.notices import Notice
from telephony.twilio import twiml
from telephony.twilio.errors import TransferError
from telephony.twilio.rest import TwilioRest
from telephony.twilio.twiml import Urls

log = logging.getLogger(__name__)

CONFERENCE_KINDS = frozenset({"phone", "client"})  # what REST can ring as a call of its own
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# Event-log kinds that instances sharing a call read from each other: the agent pressed 1, the caller entered
# the conference, the two were bridged (logged once, by whichever instance saw both halves first).
ACCEPTED, CALLER_JOINED, BRIDGED = "whisper_accepted", "caller_joined", "bridged"


def room_of(call_sid: str) -> str:
    """The conference's name: one per handed-off call."""
    return f"handoff-{call_sid}"


def address_of(target: Target) -> str:
    return f"client:{target.identity}" if target.kind == "client" else str(target.number)


class ConferenceTransfers:
    """Rings agents for a conference transfer and follows each leg's callbacks to the bridge or a fallback."""

    def __init__(
        self,
        ledger: Ledger,
        pack: BotPack,
        config: TransferConfig,
        callbacks: Callbacks,
        rest: TwilioRest | None,
        metrics: Metrics,
        targets: Callable[[CallDecision], list[Target]],
    ) -> None:
        self.ledger = ledger
        self.targets = targets
        self._taken: dict[str, asyncio.Event] = {}  # call SID -> set when an agent pressed 1
        self.pack = pack
        self.config = config
        self.callbacks = callbacks
        self.rest = rest
        self.metrics = metrics
        self.language = pack.say_language

    def applies(self, decision: CallDecision, targets: list[Target]) -> bool:
        """A person is to be rung, REST can ring them, and the first target is a phone or a Twilio Client."""
        return (
            self.rest is not None
            and decision.kind == "handoff"
            and decision.mode == "transfer"
            and decision.package is not None
            and bool(targets)
            and targets[0].kind in CONFERENCE_KINDS
        )

    # --- the caller ------------------------------------------------------------------------------------------

    def caller_twiml(self, record: CallRecord, base: str, *, say_first: str | None = None) -> str:
        """Where the caller waits for the agent: their own conference, with one sentence of hold."""
        urls = Urls(base=base, call_sid=record.call_sid)
        return twiml.conference_wait(
            room_of(record.call_sid),
            action_url=urls.of("/twilio/conference/caller-done"),
            events_url=urls.of("/twilio/conference/events"),
            wait_url=urls.of("/twilio/conference/wait"),
            say_first=say_first,
            language=self.language,
        )

    async def ready_to_move(self, record: CallRecord, announced: Awaitable[object]) -> None:
        """Once the announcement has played; or at once when an agent has already taken the call, so the
        caller is not kept listening to it while a person waits in the conference."""
        if not record.progress.agent_legs:
            await announced
            return
        taken = self._taken.setdefault(record.call_sid, asyncio.Event())
        played = asyncio.ensure_future(announced)
        waiting = asyncio.ensure_future(taken.wait())
        try:
            await asyncio.wait({played, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (played, waiting):
                task.cancel()
            self._taken.pop(record.call_sid, None)
        if taken.is_set():
            _note(record, "moved_as_agent_took_it")

    def heard(self, notice: Notice) -> None:
        """Another instance says an agent took this call: if the caller is waiting here, move them in now."""
        taken = self._taken.get(notice.call_sid)
        if notice.kind == "taken" and taken is not None:
            taken.set()

    def wait(self) -> str:
        return twiml.hold(self.pack.after_stream.still_trying, language=self.language)

    # --- ringing the agents ----------------------------------------------------------------------------------

    async def ring(self, record: CallRecord, targets: list[Target], attempt: int, base: str) -> bool:
        """Ring target `attempt` now (REST); False when REST refused (the caller is then moved on)."""
        if self.rest is None or attempt >= len(targets):
            return False
        target = targets[attempt]
        urls = Urls(base=base, call_sid=record.call_sid)
        progress = record.progress
        progress.kind, progress.conference = "transfer", True
        progress.attempt, progress.target = attempt, target.describe()
        try:
            sid = await asyncio.to_thread(
                self.rest.create_call,
                address_of(target),
                self.config.caller_id or record.called or "",
                urls.of("/twilio/conference/agent", attempt=attempt),
                machine_detection="Enable" if target.kind == "phone" else None,
                status_callback=urls.of("/twilio/conference/agent-status", attempt=attempt),
                status_events=("completed",),
                ring_timeout_s=self.config.ring_timeout_s,
            )
        except TransferError as exc:
            log.warning("could not ring agent %s for %s: %s", attempt, record.call_sid, exc)
            _note(record, "agent_ring_failed", error=str(exc)[:200])
            return False
        progress.agent_legs[attempt] = sid
        _note(record, "agent_rung", attempt=attempt)
        await self.ledger.save(record)
        return True

    # --- the agent's leg -------------------------------------------------------------------------------------

    async def agent_answered(self, call_sid: str, attempt: int, form: Mapping[str, str], base: str) -> str:
        """The agent picked up: a short brief (the card has the rest), press 1. A machine, or a caller already
        gone, gets none."""
        words = self.pack.agent
        return await brief_agent(
            self.ledger, call_sid, attempt, form.get("AnsweredBy", ""), words, summary=brief,
            press=words.press_one_short,
            accept_url=Urls(base, call_sid).of("/twilio/conference/accept", attempt=attempt), language=self.language,
        )  # fmt: skip

    async def accept(self, call_sid: str, attempt: int, form: Mapping[str, str]) -> str:
        """1: the agent enters the caller's conference (and the two are bridged once both are in)."""
        record = await self.ledger.find(call_sid)
        if record is None or form.get("Digits", "") != "1":
            return twiml.hang_up()
        if record.progress.caller_gone:
            return twiml.say_and_hang_up(self.pack.agent.caller_gone, self.language)
        if attempt not in record.progress.accepted:
            record.progress.accepted.append(attempt)
            await self.ledger.save(record)  # the agent's leg status, perhaps on another instance, reads it
            self._taken.setdefault(call_sid, asyncio.Event()).set()  # the caller is moved in now
            await self.ledger.tell(Notice("taken", call_sid))  # or by the instance that holds the caller's stream
            await self.ledger.first_time(call_sid, ACCEPTED, f"{call_sid}:accepted:{attempt}",
                                         {"attempt": attempt})  # fmt: skip
        # Logged first, then read: of this and the caller's entering (perhaps on another instance at the same
        # moment), at least one sees the other, so the bridge is never missed.
        if record.progress.caller_in_room or await self.ledger.logged(call_sid, CALLER_JOINED):
            await self._bridged(record, attempt)
        return twiml.conference_join(room_of(call_sid))

    async def agent_status(self, call_sid: str, attempt: int, form: Mapping[str, str], base: str) -> str:
        """An agent leg is over. Unless it was the bridge, ring the next target or move the caller on."""
        record = await self.ledger.find(call_sid)
        decision = record.decision if record is not None else None
        status = form.get("CallStatus", "")
        if record is None or decision is None or decision.package is None or status not in FINAL_STATUSES:
            return twiml.hang_up()
        progress = record.progress
        targets = self.targets(decision)
        accepted = attempt in progress.accepted or attempt in await self._accepted_elsewhere(call_sid)
        outcome = outcome_of(
            status,
            accepted=accepted,
            whisper=True,
            caller_gone=progress.caller_gone,
            answered_by=progress.answered_by.get(attempt) or form.get("AnsweredBy") or None,
        )
        target = targets[min(attempt, len(targets) - 1)]
        first = await record_attempt(
            self.ledger, self.metrics, record, decision.package, attempt, target, status=status, outcome=outcome,
            leg_sid=form.get("CallSid"), duration=form.get("CallDuration"),
        )  # fmt: skip
        if not first:
            return twiml.hang_up()
        step = next_step(outcome, attempt, len(targets))
        if step is NextStep.NEXT_TARGET and not progress.caller_gone:
            if await self.ring(record, targets, attempt + 1, base):
                return twiml.hang_up()
            step = NextStep.OFFER_CALLBACK_OR_VOICEMAIL
        if step is NextStep.OFFER_CALLBACK_OR_VOICEMAIL and not progress.caller_gone:
            await self.ledger.set_handoff_status(decision.package.handoff_id, "failed")
            await self._move_caller_on(record, decision, base)
        await self.ledger.save(record)
        return twiml.hang_up()

    # --- the conference --------------------------------------------------------------------------------------

    async def events(self, call_sid: str, form: Mapping[str, str]) -> None:
        """Who entered or left the caller's conference: the caller entering may complete the bridge; the caller
        leaving before it ends every agent leg still ringing or hearing the brief."""
        record = await self.ledger.find(call_sid)
        if record is None:
            return
        event = form.get("StatusCallbackEvent", "")
        who = form.get("CallSid", "")
        is_caller = who == call_sid
        if event == "participant-join" and is_caller:
            record.progress.caller_in_room = True
            await self.ledger.first_time(call_sid, CALLER_JOINED, f"{call_sid}:{CALLER_JOINED}", {})
            accepted = record.progress.accepted or await self._accepted_elsewhere(call_sid)
            if accepted and not record.progress.bridged:
                await self._bridged(record, accepted[-1])
        elif event == "participant-leave" and is_caller:
            await self.caller_left(record)
        await self.ledger.save(record)

    async def caller_done(self, call_sid: str, form: Mapping[str, str]) -> str:
        """The caller's conference leg ended (they hung up, or the agent left): nothing more to do for them."""
        record = await self.ledger.find(call_sid)
        if record is not None and form.get("CallStatus") == "completed":
            await self.caller_left(record)
            await self.ledger.save(record)
        return twiml.hang_up()

    async def caller_left(self, record: CallRecord) -> None:
        progress = record.progress
        if progress.bridged or progress.caller_gone:
            return
        if await self.ledger.logged(record.call_sid, BRIDGED):  # bridged by another instance: a call that ended
            progress.bridged = True
            return
        progress.caller_gone = True
        for attempt, sid in progress.agent_legs.items():
            if not any(note.attempt == attempt for note in progress.attempts) and self.rest is not None:
                try:  # ringing or briefing: cancel it (in progress: complete it), so no one is briefed for nobody
                    await asyncio.to_thread(self.rest.cancel_leg, sid, attempt in progress.accepted)
                except TransferError as exc:
                    log.warning("could not end agent leg %s of %s: %s", sid, record.call_sid, exc)
        await self.callbacks.caller_gone(record, "the caller hung up while the agent's phone rang or heard the brief")

    async def _bridged(self, record: CallRecord, attempt: int) -> None:
        progress = record.progress
        if progress.bridged:
            return
        progress.bridged = True
        if not await self.ledger.first_time(record.call_sid, BRIDGED, f"{record.call_sid}:{BRIDGED}",
                                            {"attempt": attempt}):  # fmt: skip
            return  # the other instance that saw both halves counted it
        reached_person(self.metrics, record, time.time())
        decision = record.decision
        if decision is not None and decision.package is not None:
            await self.ledger.set_handoff_status(decision.package.handoff_id, "bridged")

    async def _accepted_elsewhere(self, call_sid: str) -> list[int]:
        """The attempts whose agent pressed 1, as logged by any instance."""
        return [int(str(detail.get("attempt", 0))) for detail in await self.ledger.logged(call_sid, ACCEPTED)]

    async def _move_caller_on(self, record: CallRecord, decision: CallDecision, base: str) -> None:
        """Nobody took the call: out of the conference, one clear sentence, then a callback or a message."""
        if self.rest is None or decision.package is None:
            return
        urls = Urls(base=base, call_sid=record.call_sid)
        document = nobody_took_it(self.pack, self.callbacks, record, decision.package, urls, self.language)
        try:
            await asyncio.to_thread(self.rest.redirect_call, record.call_sid, document)
        except TransferError as exc:
            log.warning("could not move %s out of its conference: %s", record.call_sid, exc)


def _note(record: CallRecord, what: str, **detail: str | int | float | bool | None) -> None:
    """A timeline entry at the decision's moment (these webhooks come after the stream, off its clock)."""
    record.note(record.decision.decided_ms if record.decision else 0, what, **detail)
