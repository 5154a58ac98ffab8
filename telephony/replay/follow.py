"""After the stream, TwiML as Twilio carries it out: dials with their whispers and `<Dial action>`, queues,
gathers, recordings and redirects, with the agent behaving as the scenario says.
"""

from __future__ import annotations

import io
import json
import secrets
import wave
from collections.abc import Awaitable, Callable
from typing import Any

from telephony.replay.conference import ConferenceRun, spoken_ms
from telephony.replay.errors import ReplayError
from telephony.replay.line import PhoneLine
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import AgentBehaviour, Scenario
from telephony.replay.twilio_fake import TwilioFake
from telephony.replay.twiml_reader import Verb, read_twiml
from voice.codec import SAMPLE_RATE, ulaw_to_pcm16

MAX_TWIML_HOPS = 8
DIAL_STATUS = {
    "answer": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "reject-whisper": "completed",
    "voicemail": "completed",
    "caller-hangs-up": "canceled",
}
"""The DialCallStatus Twilio reports for each agent behaviour."""

Post = Callable[[str, dict[str, str]], Awaitable[str]]


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


class CallFlow:
    """Carries out the TwiML of one call after its stream, posting each callback Twilio would post."""

    def __init__(
        self,
        post: Post,
        absolute: Callable[[str], str],
        scenario: Scenario,
        result: ReplayResult,
        line: PhoneLine,
        *,
        agent_override: AgentBehaviour | None,
        recordings: dict[str, bytes] | None,
        account_sid: str,
        fake: TwilioFake | None = None,
    ) -> None:
        self._fake = fake
        self._post = post
        self._absolute = absolute
        self._scenario = scenario
        self._result = result
        self._line = line
        self._agent_override = agent_override
        self._recordings = recordings  # Twilio's kept recordings (the REST fake's), which the server may fetch
        self._account_sid = account_sid

    async def follow(self, twiml: str, params: dict[str, str]) -> None:
        """Carry out TwiML as Twilio would, through dials, whispers, gathers, recordings and redirects."""
        result, line = self._result, self._line
        said: list[str] = result.outcome.setdefault("twiml_said", [])
        for _ in range(MAX_TWIML_HOPS):
            next_twiml: str | None = None
            for verb in read_twiml(twiml):
                if verb.name == "Say":
                    said.append(verb.text)
                elif verb.name == "Hangup":
                    break
                elif verb.name == "Dial" and (conference := verb.find("Conference")) is not None:
                    if self._fake is None:
                        raise ReplayError("a conference transfer needs the Twilio fake (in-process replays)")
                    run = ConferenceRun(
                        self._post, self._absolute, self._scenario, self._result, self._line, self._fake, self._agent
                    )
                    next_twiml = await run.run(verb, conference, params)
                    break
                elif verb.name == "Dial":
                    next_twiml = await self._dial(verb, params)
                    break
                elif verb.name == "Enqueue":
                    next_twiml = await self._enqueue(verb, params)
                    break
                elif verb.name == "Gather":
                    said.extend(child.text for child in verb.children if child.name == "Say")
                    digits = line.next_digits()
                    if digits is None:
                        continue  # no input: Twilio goes on to the next verb
                    result.events.append(
                        {"source": "line", "t_ms": line.t_ms, "kind": "gather", "detail": {"digits": digits}}
                    )
                    next_twiml = await self._post(self._absolute(verb.attrs["action"]), {**params, "Digits": digits})
                    break
                elif verb.name == "Record":
                    next_twiml = await self._voicemail(verb, params)
                    break
                elif verb.name == "Redirect":
                    next_twiml = await self._post(self._absolute(verb.text), params)
                    break
            if next_twiml is None:
                break
            twiml = next_twiml

    async def _enqueue(self, verb: Verb, params: dict[str, str]) -> str | None:
        outcome = self._result.outcome
        task = verb.find("Task")
        outcome.update({"enqueued": True, "workflow_sid": verb.attrs.get("workflowSid")})
        outcome["task_attributes"] = json.loads(task.text) if task is not None and task.text else None
        if "action" not in verb.attrs:
            return None
        queue_params = {**params, "QueueResult": "bridged", "QueueSid": "QU" + secrets.token_hex(16), "QueueTime": "12"}
        return await self._post(self._absolute(verb.attrs["action"]), queue_params)

    def _agent(self, attempt_no: int) -> AgentBehaviour:
        behaviours = self._scenario.agent if isinstance(self._scenario.agent, list) else [self._scenario.agent]
        return self._agent_override or behaviours[min(attempt_no, len(behaviours) - 1)]

    async def _dial(self, dial: Verb, params: dict[str, str]) -> str | None:
        outcome = self._result.outcome
        attempts: list[dict[str, Any]] = outcome.setdefault("attempts", [])
        agent = self._agent(len(attempts))
        noun = next((child for child in dial.children if child.name in ("Number", "Sip", "Client")), None)
        if noun is None:
            raise ReplayError("<Dial> without a <Number>, <Sip> or <Client>")
        identity = noun.find("Identity")
        target = noun.text if noun.name != "Client" else "client:" + (identity.text if identity else "")
        attempt: dict[str, Any] = {"target_kind": noun.name.lower(), "target": target, "agent": agent}
        if noun.name == "Client":
            attempt["parameters"] = {
                p.attrs["name"]: p.attrs.get("value", "") for p in noun.children if p.name == "Parameter"
            }
        attempts.append(attempt)
        outcome.update({"kind": "transfer", "target": target, "agent": agent})
        timing: dict[str, Any] = outcome.setdefault("timing", {"legs": [], "caller_in_conference_ms": self._line.t_ms})
        agent_sid = new_call_sid()
        status = DIAL_STATUS.get(agent, "no-answer")
        call_status = "completed" if agent == "caller-hangs-up" else "in-progress"
        if noun.attrs.get("url") and agent in ("answer", "reject-whisper", "voicemail", "caller-hangs-up"):
            leg = {
                **params,
                "CallSid": agent_sid,
                "ParentCallSid": params["CallSid"],
                "To": target or "",
                "Direction": "outbound-dial",
                "CallStatus": "in-progress",
            }
            if agent == "voicemail":
                leg["AnsweredBy"] = "machine_end_beep"
            whisper = read_twiml(await self._post(self._absolute(noun.attrs["url"]), leg))
            gather = next((v for v in whisper if v.name == "Gather"), None)
            spoken = [v.text for v in whisper if v.name == "Say"]
            if gather is not None:
                spoken = [c.text for c in gather.children if c.name == "Say"] + spoken
            attempt["whisper"] = " ".join(spoken)
            outcome["whisper"] = attempt["whisper"]
            if agent == "caller-hangs-up" and "action" in dial.attrs:
                # the caller hangs up while the agent hears the whisper: Twilio ends the dial first
                ended = {
                    **params,
                    "CallStatus": "completed",
                    "DialCallStatus": "canceled",
                    "DialCallSid": agent_sid,
                    "DialCallDuration": "0",
                }
                await self._post(self._absolute(dial.attrs["action"]), ended)
            ring_ms = int(self._scenario.agent_answers_after_s * 1000)
            briefed_ms = spoken_ms(" ".join(c.text for c in gather.children if c.name == "Say")) if gather else 0
            if agent == "answer":
                accept_ms = int(self._scenario.agent_accepts_after_s * 1000)
                timing["legs"].append({"ms": ring_ms + briefed_ms + accept_ms, "accepted": True})
            else:
                timing["legs"].append({"ms": ring_ms + briefed_ms + 2000})
            if gather is not None and agent in ("answer", "caller-hangs-up"):
                answer = read_twiml(await self._post(self._absolute(gather.attrs["action"]), {**leg, "Digits": "1"}))
                attempt["accept_answer"] = [v.name for v in answer]
            if agent == "caller-hangs-up":
                attempt["dial_status"] = "canceled"
                outcome["dial_status"] = "canceled"
                return None
        if "action" not in dial.attrs:
            return None
        bridged = status == "completed" and agent == "answer"
        dial_params = {
            **params,
            "CallStatus": call_status,
            "DialCallStatus": status,
            "DialCallSid": agent_sid,
            "DialCallDuration": "42" if bridged else "0",
            "DialBridged": "true" if bridged else "false",
        }
        attempt["dial_status"] = status
        outcome["dial_status"] = status
        return await self._post(self._absolute(dial.attrs["action"]), dial_params)

    async def _voicemail(self, verb: Verb, params: dict[str, str]) -> str | None:
        """The caller leaves a message: their next speech step (or silence), then the two callbacks Twilio sends."""
        message = self._line.next_message()
        recording_sid = "RE" + secrets.token_hex(16)
        url = f"https://api.twilio.com/2010-04-01/Accounts/{self._account_sid}/Recordings/{recording_sid}"
        duration = str(max(1, round(len(message[1]) / SAMPLE_RATE))) if message else "0"
        self._result.outcome["voicemail"] = {
            "recording_sid": recording_sid,
            "duration_s": int(duration),
            "text": message[0] if message else None,
        }
        if self._recordings is not None and message is not None:  # Twilio keeps the recording
            self._recordings[recording_sid] = recording_wav(message[1])
        status_url = verb.attrs.get("recordingStatusCallback")
        if status_url and message is not None:
            await self._post(
                self._absolute(status_url),
                {
                    **params,
                    "RecordingSid": recording_sid,
                    "RecordingUrl": url,
                    "RecordingStatus": "completed",
                    "RecordingDuration": duration,
                    "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb",
                },
            )
        if "action" not in verb.attrs:
            return None
        action = {**params, "RecordingUrl": url, "RecordingDuration": duration, "Digits": "#" if message else "hangup"}
        return await self._post(self._absolute(verb.attrs["action"]), action)


def recording_wav(ulaw: bytes) -> bytes:
    """The message as Twilio serves a recording: 8 kHz 16-bit PCM WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(ulaw_to_pcm16(ulaw))
    return buffer.getvalue()
