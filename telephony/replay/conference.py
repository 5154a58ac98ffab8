"""The tester's Twilio for a conference transfer: the caller waits in a conference while the agent legs the
server rang (REST `calls.create`, recorded by the fake) are played as the scenario's agents would play them.

For each agent leg, in the order the server rang them: fetch its URL as Twilio would when the agent answers
(a brief and a press-1 gather, or nothing for a machine), then press 1 or not, enter the conference, and post
the leg's status callback when it ends. The caller's side posts the conference's join and leave events and the
`<Dial action>` when their conference leg ends. Timing is the scenario's (ring time, time to press 1) on a
simulated clock: `time_to_human_ms` below says how it is counted.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from telephony.replay.errors import ReplayError
from telephony.replay.line import PhoneLine
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import AgentBehaviour, Scenario
from telephony.replay.twilio_fake import CreatedCall, TwilioFake
from telephony.replay.twiml_reader import Verb, read_twiml

Post = Callable[[str, dict[str, str]], Awaitable[str]]
WORDS_PER_S = 2.5  # Twilio's <Say> speaks about 150 words a minute
LEG_STATUS = {"busy": "busy", "no-answer": "no-answer", "failed": "failed"}
MAX_LEGS = 10


def spoken_ms(text: str) -> int:
    return int(len(text.split()) / WORDS_PER_S * 1000)


class ConferenceRun:
    """Plays one conference transfer to its end; returns the TwiML the caller runs next, if any."""

    def __init__(
        self,
        post: Post,
        absolute: Callable[[str], str],
        scenario: Scenario,
        result: ReplayResult,
        line: PhoneLine,
        fake: TwilioFake,
        agent_of: Callable[[int], AgentBehaviour],
    ) -> None:
        self._post = post
        self._absolute = absolute
        self._scenario = scenario
        self._result = result
        self._line = line
        self._fake = fake
        self._agent_of = agent_of

    async def run(self, dial: Verb, conference: Verb, params: dict[str, str]) -> str | None:
        outcome = self._result.outcome
        outcome.update({"kind": "transfer", "conference": conference.text})
        attempts: list[dict[str, Any]] = outcome.setdefault("attempts", [])
        timing: dict[str, Any] = outcome.setdefault("timing", {"legs": []})
        timing["caller_in_conference_ms"] = self._line.t_ms
        events_url = self._absolute(conference.attrs.get("statusCallback", ""))
        caller = params["CallSid"]
        redirects_before = len(self._fake.redirects)
        await self._event(events_url, params, "participant-join", caller, conference.text)
        for index in range(MAX_LEGS):
            if index >= len(self._fake.created):
                break
            leg = self._fake.created[index]
            agent = self._agent_of(len(attempts))
            attempt: dict[str, Any] = {"target": leg.to, "agent": agent, "leg": leg.sid}
            attempts.append(attempt)
            outcome.update({"target": leg.to, "agent": agent})
            done = await self._leg(leg, agent, attempt, timing, dial, events_url, params, conference.text)
            if done:
                return None
        moved = self._fake.redirects[redirects_before:]
        mine = [u for u in moved if u.call_sid == caller and u.twiml]
        if mine:  # nobody took the call: the server moved the caller out of the conference
            outcome["moved_out"] = True
            return mine[-1].twiml
        return None

    async def _leg(
        self,
        leg: CreatedCall,
        agent: AgentBehaviour,
        attempt: dict[str, Any],
        timing: dict[str, Any],
        dial: Verb,
        events_url: str,
        params: dict[str, str],
        room: str,
    ) -> bool:
        """One agent leg; True when the call ended here (bridged, or the caller hung up)."""
        ring_ms = int(self._scenario.agent_answers_after_s * 1000)
        base = {"CallSid": leg.sid, "AccountSid": params.get("AccountSid", ""), "From": leg.from_, "To": leg.to,
                "Direction": "outbound-api", "ApiVersion": "2010-04-01"}  # fmt: skip
        status_url = self._absolute(leg.status_callback)
        if agent in LEG_STATUS:
            timing["legs"].append({"ms": 1000 if agent == "busy" else ring_ms * 2})
            await self._status(status_url, base, LEG_STATUS[agent], attempt)
            return False
        answered = {**base, "CallStatus": "in-progress"}
        if agent == "voicemail":
            answered["AnsweredBy"] = "machine_end_beep"
        brief = read_twiml(await self._post(self._absolute(leg.url), answered))
        gather = next((v for v in brief if v.name == "Gather"), None)
        said = [c.text for c in gather.children if c.name == "Say"] if gather is not None else []
        said += [v.text for v in brief if v.name == "Say"]
        attempt["whisper"] = " ".join(said)
        self._result.outcome["whisper"] = attempt["whisper"]
        brief_ms = spoken_ms(" ".join(c.text for c in gather.children if c.name == "Say")) if gather else 0
        if agent in ("voicemail", "reject-whisper") or gather is None:
            timing["legs"].append({"ms": ring_ms + brief_ms + 2000})
            await self._status(status_url, {**answered, "AnsweredBy": answered.get("AnsweredBy", "human")},
                               "completed", attempt)  # fmt: skip
            return False
        if agent == "caller-hangs-up":  # the caller gives up while the agent hears the brief
            await self._event(events_url, params, "participant-leave", params["CallSid"], room)
            action = dial.attrs.get("action")
            if action:
                await self._post(self._absolute(action), {**params, "CallStatus": "completed",
                                                          "DialCallStatus": "completed"})  # fmt: skip
            attempt["server_ended_leg"] = self._fake.status_of(leg.sid)
            answer = read_twiml(await self._post(self._absolute(gather.attrs["action"]), {**answered, "Digits": "1"}))
            attempt["accept_answer"] = [v.name for v in answer]
            await self._status(status_url, answered, "completed", attempt)
            self._result.outcome["dial_status"] = "canceled"
            return True
        answer = read_twiml(await self._post(self._absolute(gather.attrs["action"]), {**answered, "Digits": "1"}))
        attempt["accept_answer"] = [v.name for v in answer]
        joined = next((v for v in answer if v.name == "Dial"), None)
        entered = joined.find("Conference") if joined is not None else None
        if entered is None or entered.text != room:
            raise ReplayError(f"the agent who pressed 1 was not put into the conference {room}: {answer}")
        accept_ms = int(self._scenario.agent_accepts_after_s * 1000)
        timing["legs"].append({"ms": ring_ms + brief_ms + accept_ms, "accepted": True})
        await self._event(events_url, params, "participant-join", leg.sid, room)
        # ... the conversation; then the agent hangs up and the conference ends for both
        await self._event(events_url, params, "participant-leave", leg.sid, room)
        await self._status(status_url, {**answered, "CallDuration": "42"}, "completed", attempt)
        action = dial.attrs.get("action")
        if action:
            await self._post(
                self._absolute(action), {**params, "CallStatus": "completed", "DialCallStatus": "answered"}
            )
        self._result.outcome["dial_status"] = "completed"
        return True

    async def _event(self, url: str, params: dict[str, str], event: str, who: str, room: str) -> None:
        if not url:
            return
        await self._post(url, {"AccountSid": params.get("AccountSid", ""), "ConferenceSid": "CF" + "0" * 32,
                               "FriendlyName": room, "StatusCallbackEvent": event, "CallSid": who,
                               "SequenceNumber": str(secrets.randbelow(10**6))})  # fmt: skip

    async def _status(self, url: str, leg: dict[str, str], status: str, attempt: dict[str, Any]) -> None:
        attempt["dial_status"] = status
        self._result.outcome["dial_status"] = status
        if url:
            await self._post(url, {**leg, "CallStatus": status})


def time_to_human_ms(timing: dict[str, Any], decided_ms: int, conference: bool) -> int | None:
    """Decision to bridge on the simulated clock. Conference: the agents are rung from the decision, one after
    another, and the bridge comes when the accepting agent and the caller (after the announcement) are both in.
    Dial: the first agent is rung only when the caller's call dials, after the announcement."""
    legs = timing.get("legs") or []
    if not any(leg.get("accepted") for leg in legs):
        return None
    spent = 0
    for leg in legs:
        spent += int(leg["ms"])
        if leg.get("accepted"):
            break
    caller_ready = int(timing.get("caller_in_conference_ms", decided_ms))
    if conference:  # the server moves the caller in as soon as the agent takes the call (or when announced)
        return spent
    return caller_ready + spent - decided_ms
