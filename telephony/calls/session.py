"""One call on one media-stream websocket: Twilio's protocol ↔ the caller's audio ↔ the dialog ↔ bot speech.

The session owns no socket: it is given each websocket message and a `Transport` to send and close with,
so the FastAPI handler stays a short loop and tests can drive a session directly. Three things run per
call: the receive path (called per message; per frame it only decodes and runs the VAD), the recognition
worker (off the event loop), and the action runner (speaks prompts and carries out the dialog's decision
once the caller has heard what happens next).

Control before data: DTMF, stop and barge-in are handled as they arrive; a barge-in sends `clear` at once
and stops any prompt still being sent. Whatever fails inside (the dialog, a tool, the recogniser), the
caller is handed to a person with what they said.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

from dialogs.actions import Action, CallTool, EndCall, Explain, HandOff, Listen, Route, Say
from dialogs.dialog import Dialog
from dialogs.events import (
    CallerHungUp,
    CallerPartial,
    CallerSaid,
    CallerUnintelligible,
    CallStarted,
    DialogEvent,
    DtmfPressed,
    PromptInterrupted,
    PromptPlayed,
    SilenceTimeout,
)
from dialogs.package import Category
from dialogs.redaction import redact
from telephony.calls.admission import TICKET_PARAMETER
from telephony.calls.hearing import CallerEars, NoiseDropped, RecognitionWorker
from telephony.calls.lookups import route, run_tool
from telephony.calls.playout import Playout
from telephony.calls.ports import MAX_READ_BATCH, SessionConfig, SessionDeps, Transport
from telephony.calls.records import CallDecision, CallRecord, PromptRecord, TurnLatency, TurnRecord
from telephony.calls.speaker import PromptSpeaker
from telephony.twilio.protocol import (
    DtmfReceived,
    MarkEchoed,
    MediaReceived,
    MediaStreamProtocol,
    ProtocolError,
    Started,
    Stopped,
    StreamEvent,
)
from voice.codec import FRAME_MS, SAMPLE_RATE
from voice.recognition import Heard, RecognizerFailed
from voice.stt import Transcript
from voice.vad import SpeechEnded, SpeechStarted

log = logging.getLogger(__name__)

StreamEnd = Literal["server_closed", "caller_stop", "dropped", "transferred"]
_SETTLE_POLL_S = 0.0005
POLICY_VIOLATION = 1008  # websocket close code for a stream we refuse
# The end-of-speech window's last frames are read as they come: asked this many frames ahead, the read that
# asks holds no frame past the closing one, however a batch of MAX_READ_BATCH messages falls (and one more, for
# a read that finds a message more than its batch, the server having been busy when the socket was ready).
PROMPT_READ_FRAMES = MAX_READ_BATCH


@dataclass(frozen=True)
class BargedIn:
    """A barge-in already cut off (nothing more of the prompt is sent), whose `clear` is still to go to Twilio."""

    current: PromptRecord | None  # the prompt that was playing, with how much of it was heard


def _loggable(value: object) -> str | int | float | bool | None:
    """A signal as the timeline and the log may hold it: a scalar, with any text redacted (it may quote the caller)."""
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(value if isinstance(value, str) else str(value))


class CallSession:
    """One call's media stream, from Twilio's `connected` to the socket closing."""

    def __init__(self, deps: SessionDeps, config: SessionConfig, transport: Transport, base_url: str = "") -> None:
        self.deps = deps
        self.config = config
        self.transport = transport
        self.base_url = base_url  # where Twilio reaches this server, for the TwiML of a REST transfer
        self.protocol = MediaStreamProtocol(config.max_message_bytes)
        self.ears = CallerEars(config.vad)
        self.playout = Playout(config.mark_grace_ms)
        self.speaker = PromptSpeaker(deps.synthesizer, transport, self.protocol)
        self.record: CallRecord | None = None
        self.closing = False  # the server decided to close the stream
        self.moved = False  # the live call was moved with REST; the stream ends from Twilio's side
        self.clock_ms = 0  # the caller's media clock: end of the last frame received
        self._dialog: Dialog | None = None
        self._worker: RecognitionWorker | None = None
        self._actions: asyncio.Queue[tuple[Action, int]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._acting = False  # the runner is carrying out an action (not waiting on the caller or Twilio)
        self._listening = False
        self._silence_from: int | None = None
        self._pending_turn: Heard | None = None  # waits for the reply prompt, to measure latency
        self._ended = False
        self._partial = ""
        self._reads_prompt = False  # the transport reads each message at once (`_pace_reads`)
        self._tasks: set[asyncio.Future[None]] = set()
        self._failing: asyncio.Future[None] | None = None  # handing the call on after its recogniser failed
        self.refused = False  # not admitted: this stream never speaks for any call
        self._live = False  # counted in the live-calls gauge

    @property
    def call_sid(self) -> str | None:
        return self.protocol.call_sid

    # --- inbound ----------------------------------------------------------------------------------------

    async def receive(self, text: str | bytes) -> None:
        """Handle one websocket message; never raises for bad input."""
        if self.refused:
            return
        await self.handle(self.protocol.receive(text))

    def receive_now(self, text: str) -> StreamEvent | BargedIn | None:
        """Handle one message at once when that needs no waiting, from the socket's own callback: inbound
        audio, nearly all of a call, and the marks Twilio echoes as prompts finish. What needs waiting is
        returned for `handle`, which the websocket loop awaits in order: any other event, parsed, or a
        barge-in whose `clear` is still to send. Never raises for bad input."""
        if self.refused:
            return None
        event = self.protocol.receive(text)
        if type(event) is MediaReceived and not self.closing:
            return self._hear(event)
        if type(event) is MarkEchoed:  # as `handle` would, without waking the websocket loop for it
            self._on_mark(event)
            return None
        return event

    async def handle(self, event: StreamEvent | BargedIn) -> None:
        """Act on one parsed stream event (or finish a barge-in heard from the socket's callback)."""
        if type(event) is MediaReceived:
            await self._on_media(event)
        elif isinstance(event, BargedIn):
            await self._clear(event)
        elif isinstance(event, MarkEchoed):
            self._on_mark(event)
        elif isinstance(event, DtmfReceived):
            await self._on_dtmf(event)
        elif isinstance(event, Started):
            self._on_start(event)
        elif isinstance(event, Stopped):
            self._note("stop")
            await self.end("caller_stop")
        elif isinstance(event, ProtocolError):
            await self._on_protocol_error(event)

    async def _on_media(self, event: MediaReceived) -> None:
        barged = self._hear(event)
        if barged is not None:
            await self._clear(barged)

    def _hear(self, event: MediaReceived) -> BargedIn | None:
        """Decode and listen to a media payload; a barge-in it holds is cut off here and returned, for `_clear`."""
        pcm = self.ears.frame(event.payload)
        if pcm is not None:  # Twilio's payloads are one frame each: no list of frames to build
            barged = self._hear_frame(event.timestamp_ms, pcm)
        else:
            barged = None
            for t_ms, pcm in self.ears.frames(event.payload, event.timestamp_ms):
                barged = self._hear_frame(t_ms, pcm) or barged
        self._tick()
        return barged

    def _hear_frame(self, t_ms: int, pcm: bytes) -> BargedIn | None:
        self.clock_ms = t_ms + FRAME_MS
        ears = self.ears
        vad = ears.listen(pcm, t_ms, self._worker)
        barged = None
        pace = self._reads_prompt or ears.endpoint.in_speech  # most frames: neither, and nothing more is asked
        if self.playout.interruptible:
            onset = ears.barge_in.feed(ears.endpoint.last_voiced, t_ms)
            if onset is not None:
                barged = self._cut_off(onset, "speech")
            pace = pace or ears.barge_in.may_fire_within(PROMPT_READ_FRAMES)
        if pace:
            self._pace_reads()
        if vad is not None:  # nearly every frame changes nothing: not even a call to note it
            self._note_heard(vad)
        return barged

    def _pace_reads(self) -> None:
        """The socket reads each message as it comes near the end of the end-of-speech window, and while the
        caller's voice over the bot may become a barge-in: the frame that closes the window (and so the reply),
        or the one that cuts the bot off, must not wait for partners in a batched read (`read_promptly`)."""
        ears = self.ears
        prompt = ears.endpoint.closing_within(PROMPT_READ_FRAMES) or (
            self.playout.interruptible and ears.barge_in.may_fire_within(PROMPT_READ_FRAMES)
        )
        if prompt != self._reads_prompt:
            self._reads_prompt = prompt
            self.transport.read_promptly(prompt)

    def _note_heard(self, vad: SpeechStarted | SpeechEnded | NoiseDropped) -> None:
        if type(vad) is SpeechStarted:
            self._silence_from = None
            self._note("speech_started", at_ms=vad.t_ms)
        elif type(vad) is SpeechEnded:
            self._note("speech_ended", start_ms=vad.start_ms, last_voiced_ms=vad.last_voiced_ms)
        else:
            self._note("noise_ignored")

    def _tick(self) -> None:
        """Timers on the media clock: overdue marks, and no input from the caller."""
        for prompt in self.playout.overdue(self.clock_ms) if self.clock_ms >= self.playout.check_at_ms else ():
            self._note("mark_overdue", mark=prompt.mark)
            self._prompt_done(prompt.prompt_id)
        if (
            self._listening
            and self._silence_from is not None
            and not self.ears.utterance_open
            and self.clock_ms - self._silence_from >= self.config.no_input_timeout_ms
        ):
            silent = self.clock_ms - self._silence_from
            self._silence_from = self.clock_ms
            self._dialog_event(SilenceTimeout(silent_ms=silent, t_ms=self.clock_ms))

    def _admitted(self, event: Started) -> bool:
        """A stream speaks for a call only with the ticket our voice webhook issued it, and only one stream does."""
        tickets = self.deps.tickets
        admission = tickets.admit(event.call_sid, event.custom_parameters.get(TICKET_PARAMETER)) if tickets else None
        why = admission.why if admission is not None and not admission.admitted else ""
        if not why and self.deps.streams.get(event.call_sid) is not None:
            why = "another stream is already open for the call"
        if not why:
            return True
        log.warning("refused a media stream for call %s: %s", event.call_sid, why)
        self.refused = True
        self.closing = True  # the websocket handler closes it with POLICY_VIOLATION
        return False

    def _on_start(self, event: Started) -> None:
        if self.record is not None or not self._admitted(event):
            return  # a second `start` on a stream, or a stream this call never asked for: it changes nothing
        record = self.deps.registry.open(event.call_sid)
        self.record = record
        record.status = "streaming"
        record.stream_sid = event.stream_sid
        record.account_sid = event.account_sid
        record.parameters = {k: v for k, v in event.custom_parameters.items() if k != TICKET_PARAMETER}
        record.caller = record.caller or event.custom_parameters.get("caller")
        record.called = record.called or event.custom_parameters.get("called")
        record.asr_engine = self.deps.recognition.name
        record.base_url = record.base_url or self.base_url
        self.deps.streams.add(event.call_sid, self)
        self._live = True
        self.deps.metrics.call_started()  # balanced in `end`, which runs for every stream that got this far
        self._note("start", stream_sid=event.stream_sid)
        self._keep()  # stored from its first second: a crash before any decision loses nothing
        self._worker = RecognitionWorker(
            self.deps.recognition, event.call_sid, self._on_heard, self._on_partial, self._on_recognition_failed
        )
        self._runner = asyncio.create_task(self._run_actions(), name=f"actions-{event.call_sid}")
        self._dialog = self.deps.dialogs.new_dialog(event.call_sid)
        self._dialog_event(
            CallStarted(
                call_sid=event.call_sid,
                caller=record.caller,
                called=record.called,
                parameters=dict(record.parameters),
                t_ms=self.clock_ms,
            )
        )
        if event.media_problem is not None:
            log.warning("media stream protocol error on %s: %s", event.call_sid, event.media_problem)
            self._failing = asyncio.ensure_future(
                self._fall_back("protocol_unsupported_media_format", words="media_unusable", detail=event.media_problem)
            )

    def _on_mark(self, event: MarkEchoed) -> None:
        prompt = self.playout.echoed(event.name)
        if prompt is None:
            return  # a mark echoed after `clear`, already accounted for
        self._note("prompt_played", prompt_id=prompt.prompt_id)
        self._prompt_done(prompt.prompt_id)

    def _prompt_done(self, prompt_id: str) -> None:
        if not self.playout.speaking:
            self.speaker.idle.set()
            self._silence_from = self.clock_ms
        self._dialog_event(PromptPlayed(prompt_id=prompt_id, t_ms=self.clock_ms))

    async def _on_dtmf(self, event: DtmfReceived) -> None:
        self._note("dtmf", digit=event.digit)
        if self.playout.interruptible:
            await self._clear(self._cut_off(self.clock_ms, "dtmf"))
        self._silence_from = self.clock_ms if not self.playout.speaking else None
        self._dialog_event(DtmfPressed(digit=event.digit, t_ms=self.clock_ms))

    def _cut_off(self, onset_ms: int, by: str) -> BargedIn:
        """The caller talked (or keyed) over the bot: stop sending and record what was heard, at once.
        Twilio's buffer is cleared, and the dialog told, by `_clear`, before anything else is sent."""
        self.speaker.cut()
        cut = self.playout.interrupt(onset_ms, self.clock_ms)
        current = cut.current
        self._note(
            "barge_in",
            by=by,
            onset_ms=onset_ms,
            prompt_id=current.prompt_id if current else None,
            heard_ms=current.heard_ms if current else None,
        )
        return BargedIn(current)

    async def _clear(self, barged: BargedIn) -> None:
        """The rest of a barge-in: Twilio drops the audio it holds, then the dialog hears what was cut off."""
        try:
            await self.transport.send(self.protocol.clear())
        finally:
            self.speaker.cleared()
        current = barged.current
        if current is not None:
            self._dialog_event(
                PromptInterrupted(prompt_id=current.prompt_id, heard_ms=current.heard_ms or 0, t_ms=self.clock_ms)
            )

    async def _on_protocol_error(self, error: ProtocolError) -> None:
        call = error.call_sid or "unknown call"
        log.warning("media stream protocol error on %s: %s: %s", call, error.kind, error.detail)
        if self.record is not None:
            self.record.protocol_errors[error.kind] = self.record.protocol_errors.get(error.kind, 0) + 1
            self._note("protocol_error", error=str(error.kind), fatal=error.fatal)
        if error.fatal and not self.closing:
            await self._fall_back(f"protocol_{error.kind}", words="media_unusable", detail=error.detail)

    # --- recognition results -------------------------------------------------------------------------------

    def _on_partial(self, transcript: Transcript) -> None:
        if transcript.text != self._partial:
            self._partial = transcript.text
            self._dialog_event(CallerPartial(text=transcript.text, t_ms=self.clock_ms))

    def _on_recognition_failed(self, error: RecognizerFailed) -> None:
        """The caller can no longer be heard: hand them on now, with what they already said."""
        self.deps.metrics.recognizer_failed()
        if self._ended or self.closing or self._failing is not None:
            return
        self._note("recognizer_failed", error=str(error)[:200])
        self._failing = asyncio.ensure_future(self._fall_back("recognizer_failed", "confidence_gap"))

    def _on_heard(self, heard: Heard) -> None:
        self._partial = ""
        self._pending_turn = heard
        transcript = heard.transcript
        if transcript is None or not transcript.text.strip():
            self._note("unintelligible", start_ms=heard.start_ms, end_ms=heard.end_ms)
            self._dialog_event(CallerUnintelligible(start_ms=heard.start_ms, end_ms=heard.end_ms, t_ms=heard.end_ms))
            return
        record = self.record
        decided_before = record is not None and record.decision is not None
        if record is not None:
            record.add_caller_turn(
                transcript.text, heard.start_ms, heard.end_ms, transcript.confidence, transcript.engine
            )
            self._note("caller_said", text=transcript.text, confidence=round(transcript.confidence, 3))
        self._dialog_event(
            CallerSaid(
                text=transcript.text,
                confidence=transcript.confidence,
                start_ms=heard.start_ms,
                end_ms=heard.end_ms,
                t_ms=heard.end_ms,
            )
        )
        if record is not None and (decided_before or record.decision is None):
            self._keep()  # kept before anything else runs; a turn that decided was kept with its decision

    # --- the dialog and its actions -------------------------------------------------------------------------

    def _dialog_event(self, event: DialogEvent) -> None:
        if self._ended:
            return
        actions = self._ask_dialog(event)
        for action in actions:
            if isinstance(action, HandOff | EndCall):
                self._record_decision(action)
            self._actions.put_nowait((action, self.speaker.generation))

    def _ask_dialog(self, event: DialogEvent) -> list[Action]:
        """The dialog's actions for an event. A dialog that raises decides nothing more on this call, and a
        caller still on the line is handed on with what they said (trigger `dialog_error`)."""
        if self._dialog is None:
            return []
        try:
            return self._dialog.handle(event)
        except Exception:
            log.exception("the dialog failed on call %s handling %s", self.call_sid, type(event).__name__)
            self._dialog = None
            self._note("dialog_error", event=type(event).__name__)
            undecided = self.record is None or self.record.decision is None
            if self._failing is None and not self.closing and not self._ended and undecided:
                self._failing = asyncio.ensure_future(self._fall_back("dialog_error"))
            return []

    def _record_decision(self, action: HandOff | EndCall) -> None:
        """Keep the decision the moment the dialog makes it: a caller who hangs up during the
        announcement must not take the handoff package with them."""
        if isinstance(action, HandOff):
            decision = CallDecision(
                kind="handoff",
                reason=action.package.reason.trigger,
                decided_ms=self.clock_ms,
                package=action.package,
                routing=action.routing,
                callback=action.callback,
            )
        else:
            decision = CallDecision(kind="end", reason=action.reason, decided_ms=self.clock_ms)
        self._keep_decision(decision)

    def _keep(self) -> None:
        """Keep the call as it now is before control goes back to the event loop: nothing else (an API read of
        the live record, a kill -9) can come between what the caller said and its spooled copy."""
        if self.record is None or self.deps.desk is None:
            return
        try:
            self.deps.desk.keep(self.record)
        except Exception:  # the call goes on: the next keep, or the end's save, stores it
            log.exception("could not keep the record of call %s", self.call_sid)

    def _keep_decision(self, decision: CallDecision) -> None:
        if self.record is None or self.record.decision is not None:
            return
        decision.decided_at = time.time()
        self.record.decision = decision
        self.record.status = "decided"
        package = decision.package
        if decision.kind == "handoff" and package is not None:
            queue = decision.routing.queue if decision.routing is not None else package.recommended_queue
            self.deps.metrics.handoff(package.reason.category, package.reason.trigger, queue)
        self._note("decision", decision=decision.kind, reason=decision.reason)
        if self.deps.desk is not None:
            self._keep()  # the turn that decided, and the decision: kept in one snapshot, now
            self._background(self.deps.desk.decided(self.record))

    def _background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_actions(self) -> None:
        while True:
            action, generation = await self._actions.get()
            self._acting = True
            try:
                if isinstance(action, HandOff | EndCall):
                    self._acting = False
                    await self._announced()  # the caller hears what happens next before it happens
                    self._acting = True
                    await self._close_for_decision()
                    return
                await self._act(action, generation)
            except Exception:  # one failed action must not end the call's handling
                log.exception("action %s failed on call %s", type(action).__name__, self.call_sid)
            finally:
                self._acting = False

    async def _announced(self) -> None:
        """The announcement has played, or a person who took the call is already waiting for the caller."""
        if self.deps.desk is None or self.record is None:
            await self.speaker.idle.wait()
            return
        await self.deps.desk.ready_to_move(self.record, self.speaker.idle.wait())

    async def _act(self, action: Action, generation: int) -> None:
        if isinstance(action, Say):
            await self._say(action, generation)
        elif isinstance(action, Listen):
            self._listening = True
            if self._worker is not None:
                self._worker.phrases(action.phrases)
            if not self.playout.speaking and self._silence_from is None:
                self._silence_from = self.clock_ms
        elif isinstance(action, CallTool):
            result = await run_tool(self.deps, self.call_sid or "", action, self.clock_ms)
            self._note("tool", tool=action.tool, ok=result.ok, found=bool(result.data.get("found", result.ok)))
            self._dialog_event(result)
        elif isinstance(action, Explain):
            self._explain(action)
        elif isinstance(action, Route):
            routed = await route(self.deps, self.call_sid or "", action, self.clock_ms)
            decision = routed.decision
            self._note("routed", queue=decision.queue, mode=decision.mode, expected_wait_s=decision.expected_wait_s)
            self._dialog_event(routed)

    def _explain(self, explain: Explain) -> None:
        """The dialog's reasons, into the call's timeline and the log (scalars only; text is redacted)."""
        detail = {
            k: redact(v)
            if isinstance(v, str)
            else v
            if isinstance(v, int | float | bool) or v is None
            else redact(str(v))
            for k, v in explain.signals.items()
        }
        self._note("dialog", decision=explain.decision, **detail)
        log.info("call %s: dialog decided %s %s", self.call_sid, explain.decision, detail)

    async def _say(self, say: Say, generation: int) -> None:
        if self.speaker.moot(say, generation):
            self._note("prompt_dropped", prompt_id=say.prompt_id)
            return
        got = await self.speaker.audio(say, self.call_sid)
        if got is None:
            self._note("prompt_failed", prompt_id=say.prompt_id)
            return
        if self.speaker.moot(say, generation):  # the caller talked while it was being synthesised
            self._note("prompt_dropped", prompt_id=say.prompt_id)
            return
        audio, cached = got
        duration = len(audio) * 1000 // SAMPLE_RATE
        prompt = self.playout.start(
            say.prompt_id, say.text, duration, self.clock_ms, cached=cached, interruptible=say.interruptible
        )
        self._silence_from = None
        if self.playout.pending_count == 1:
            self.ears.barge_in.reset()
        if self.record is not None:
            self.record.prompts.append(prompt)
            end_ms = prompt.play_start_ms + duration
            self.record.turns.append(
                TurnRecord(speaker="bot", text=say.text, start_ms=prompt.play_start_ms, end_ms=end_ms)
            )
        sent = await self.speaker.send(
            say, prompt, audio, generation, lambda: self._measure_reply(say.prompt_id, cached)
        )
        if sent:
            self._note("prompt_sent", prompt_id=say.prompt_id, duration_ms=duration, cached=cached)

    def _measure_reply(self, prompt_id: str, cached: bool) -> None:
        heard, self._pending_turn = self._pending_turn, None
        if heard is None or self.record is None:
            return
        latency = TurnLatency(
            last_voiced_ms=heard.last_voiced_ms,
            window_closed_ms=heard.end_ms,
            after_window_ms=round((time.perf_counter() - heard.window_closed_at) * 1000, 3),
            prompt_id=prompt_id,
            cached=cached,
        )
        self.record.latencies.append(latency)
        self.deps.metrics.turn_latency(latency.after_window_ms, cached=cached)

    async def _close_for_decision(self) -> None:
        """Carry out the decision: move the live call with REST, or close the stream so Twilio asks
        `<Connect action>`. After a REST move Twilio stops the stream itself; closing it must not end the call."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)  # the decision is stored first
        if self.record is not None and self.deps.desk is not None and await self.deps.desk.carry_out(self.record):
            self.moved = True  # Twilio ends the stream itself (a `stop`); we keep reading until it does
            return
        if not self.closing:
            self.closing = True
            await self.transport.close(1000)

    async def hand_on(self, trigger: str) -> None:
        """This server is going away: hand the caller to a person now, with what they have said (Twilio asks
        `<Connect action>`, which any other instance answers)."""
        if self._live and not self.closing:
            await self._fall_back(trigger)

    async def _fall_back(
        self, trigger: str, category: Category = "workflow_exception", words: str | None = None, **details: object
    ) -> None:
        """The conversation cannot go on: hand the call to a person with what we have."""
        record = self.record
        if record is None:  # no admitted `start`: no call of ours to file this on; Twilio's <Connect action> will
            log.warning("closing a media stream that never started properly (%s)", trigger)
            if not self.closing:
                self.closing = True
                await self.transport.close(POLICY_VIOLATION)
            return
        call_sid = record.call_sid
        dialogs = self.deps.dialogs
        reason = dialogs.fallback_reason(trigger, category, words, **details)
        package = dialogs.fallback(call_sid, record.caller, record.transcript(), reason)
        self._keep_decision(CallDecision(kind="handoff", reason=trigger, decided_ms=self.clock_ms, package=package))
        await self._close_for_decision()

    # --- quiet, and the end ---------------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """Nothing this call started is still running: what is left waits on the caller or on Twilio."""
        worker_idle = self._worker is None or self._worker.idle
        failing = self._failing is not None and not self._failing.done()
        quiet = not self._acting and not self._tasks and not failing
        return worker_idle and self._actions.empty() and quiet

    async def settle(self) -> None:
        """Wait until the call is settled: a virtual clock advances only then (tests and replays)."""
        await asyncio.sleep(0)
        # Polled rather than signalled: recognition and tools finish on executor threads, and the call's code
        # stays free of test-only hooks. Only a virtual clock calls this.
        while not self.settled:  # noqa: ASYNC110
            await asyncio.sleep(_SETTLE_POLL_S)
        await asyncio.sleep(0)

    async def end(self, how: StreamEnd) -> None:
        """The stream is over: keep every word the caller said, and record how it ended."""
        if self._live:  # first, and once even if two ends overlap: whatever fails below, the call is not live
            self._live = False
            self.deps.metrics.call_ended()
        if self._ended:
            return
        if self.refused or self.record is None:  # a refused stream, or one that never started: no call of ours
            self._ended = True
            if self._runner is not None:
                self._runner.cancel()
            return
        if self.moved or self.record.progress.moved_by_rest:
            how = "transferred"
        elif self.closing:
            how = "server_closed"
        if self._worker is not None:
            self.ears.cut_short(self._worker, self.clock_ms)  # mid-sentence: recognise what we have
            await self._worker.close()
        self._ended = True
        if self._runner is not None:
            self._runner.cancel()
        if how != "server_closed":
            self._ask_dialog(CallerHungUp(t_ms=self.clock_ms))
        if self.call_sid is not None:
            self.deps.streams.remove(self.call_sid, self)
        if self.record is not None:
            self.record.stream_end = how
            self.record.status = "stream_ended"
            self.record.note(self.clock_ms, "stream_end", how=how)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.deps.desk is not None:
                try:
                    await self.deps.desk.ended(self.record)
                except Exception:  # storing must not break the socket's shutdown; the log says what failed
                    log.exception("could not store the end of call %s", self.record.call_sid)
        log.info("call %s: stream ended (%s)", self.call_sid, how)

    def _note(self, what: str, /, **detail: str | int | float | bool | None) -> None:
        if self.record is not None:
            self.record.note(self.clock_ms, what, **detail)
