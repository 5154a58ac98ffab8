"""`handoff replay`: play Twilio's part of a call against a handoff server, and report what happened.

The harness does what Twilio does, over real HTTP and a real websocket: it POSTs the signed voice
webhook, opens the stream URL the TwiML names (signed handshake), sends `connected`, `start` and the
caller's audio as 20 ms frames (silence between utterances, as a phone line does), DTMF, mark echoes
when the bot audio before them would have finished playing, and honours `clear`. When the stream
closes it requests the `<Connect action>` URL and follows the TwiML (a `<Dial>` through its whisper and
`<Dial action>`), then reads the server's call record from its API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from telephony.errors import ReplayError
from telephony.replay_line import LineEvent, PhoneLine
from telephony.scenario import Scenario
from telephony.security import TwilioSignatureCheck
from telephony.twilio_fake import CallUpdate, TwilioFake
from telephony.twiml_reader import Verb, read_twiml
from voice.codec import FRAME_MS, SAMPLE_RATE
from voice.wavfile import read_ulaw_wav, write_ulaw_wav

log = logging.getLogger(__name__)

ACCOUNT_SID = "AC" + "0" * 32
MAX_TWIML_HOPS = 8
REPEATABLE = ("/twilio/dial-status", "/twilio/recording-status", "/twilio/voicemail", "/twilio/enqueue-status")


@dataclass
class ReplayOptions:
    """How to play the call: `speed` 1 is real time, 10 is ten times faster."""

    speed: float = 1.0
    asr: str = "oracle"
    wer: float | None = None
    seed: int | None = None
    agent: str | None = None  # overrides the scenario's agent behaviour
    out_dir: Path | None = None


@dataclass
class ReplayResult:
    """Everything a replay saw, as written to the result JSON."""

    scenario: str
    call_sid: str
    asr: str
    outcome: dict[str, Any] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    handoff: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[dict[str, Any]] = field(default_factory=list)
    bot_audio_wav: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    passed: bool | None = None
    server_record: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "server_record"}
        return data


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


async def caller_audio(scenario: Scenario, synthesize: Any) -> list[bytes | None]:
    """The caller's audio for each step: the file it names, or its text synthesised to phone audio."""
    audio: list[bytes | None] = []
    for step in scenario.caller:
        if step.kind != "speech":
            audio.append(None)
        elif step.audio is not None:
            audio.append(read_ulaw_wav(scenario.resolve(step.audio)))
        else:
            audio.append(await synthesize(step.say or ""))
    return audio


class TwilioPlayer:
    """Plays Twilio against the server at `base_url` (http://127.0.0.1:8000, say)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth_token: str,
        api_token: str | None,
        options: ReplayOptions,
        fake: TwilioFake | None = None,
    ) -> None:
        self.fake = fake  # Twilio's REST API, faked on loopback: how the harness learns of a REST transfer
        self.repeat_callbacks = False
        self.repeats: list[dict[str, Any]] = []
        self._redirect: CallUpdate | None = None
        self.base_url = base_url.rstrip("/")
        self.signer = TwilioSignatureCheck(auth_token)
        self.api_token = api_token
        self.options = options

    async def run(self, scenario: Scenario, audio: list[bytes | None]) -> ReplayResult:
        call_sid = scenario.call.call_sid or new_call_sid()
        self.repeat_callbacks = scenario.repeat_callbacks
        result = ReplayResult(scenario=scenario.name, call_sid=call_sid, asr=self.options.asr)
        line = PhoneLine(list(scenario.caller), audio)
        async with httpx.AsyncClient(timeout=httpx.Timeout(15.0)) as http:
            if self.options.asr == "oracle":
                await self._register_oracle(http, scenario, call_sid)
            params = self._call_params(scenario, call_sid)
            if self.fake is not None:
                self.fake.add_call(call_sid, to=scenario.call.to_number, from_=scenario.call.from_number)
                for path, status, times in scenario.twilio_failures():
                    self.fake.fail_next(path, status=status, times=times)
            verbs = read_twiml(await self._post(http, self.base_url + "/twilio/voice", params))
            connect = next((v for v in verbs if v.name == "Connect"), None)
            stream = connect.find("Stream") if connect else None
            if connect is None or stream is None or "url" not in stream.attrs:
                raise ReplayError("the voice webhook did not answer <Connect><Stream url=...>")
            custom = {p.attrs["name"]: p.attrs.get("value", "") for p in stream.children if p.name == "Parameter"}
            await self._stream(stream.attrs["url"], call_sid, custom, line, scenario.max_call_ms)
            result.events.extend(_event(e, "line") for e in line.events)
            if self._redirect is not None:  # the server moved the call with REST: Twilio runs the new TwiML
                result.outcome["moved_by"] = "rest"
                twiml = self._redirect.twiml or await self._post(http, self._absolute(self._redirect.url or ""), params)
                await self._follow(http, twiml, {**params, "CallStatus": "in-progress"}, scenario, result, line)
            elif connect.attrs.get("action") and not _hung_up(line):
                action = self._absolute(connect.attrs["action"])
                twiml = await self._post(http, action, {**params, "CallStatus": "in-progress"})
                await self._follow(http, twiml, params, scenario, result, line)
            elif _hung_up(line):
                result.outcome = {"kind": "hangup", "by": "caller"}
            record = await self._server_record(http, call_sid)
        self._collect(result, record)
        if self.repeats:
            result.outcome["repeated_callbacks"] = self.repeats
        if self.options.out_dir is not None:
            self.options.out_dir.mkdir(parents=True, exist_ok=True)
            wav = self.options.out_dir / f"{_slug(scenario.name)}.bot.wav"
            write_ulaw_wav(wav, bytes(line.heard))
            result.bot_audio_wav = str(wav)
        return result

    # --- HTTP as Twilio does it ---------------------------------------------------------------------------

    def _call_params(self, scenario: Scenario, call_sid: str) -> dict[str, str]:
        return {
            "CallSid": call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": scenario.call.from_number,
            "To": scenario.call.to_number,
            "CallStatus": "ringing",
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
            **scenario.call.parameters,
        }

    def _absolute(self, url: str) -> str:
        return url if "://" in url else self.base_url + url

    async def _post(self, http: httpx.AsyncClient, url: str, params: dict[str, str]) -> str:
        signature = self.signer.sign(url, params)
        response = await http.post(url, data=params, headers={"X-Twilio-Signature": signature})
        if response.status_code not in (200, 204):
            raise ReplayError(f"POST {url} answered HTTP {response.status_code}: {response.text[:300]}")
        if self.repeat_callbacks and any(path in url for path in REPEATABLE):
            # Twilio may deliver a status callback twice; the second must change nothing and answer the same
            again = await http.post(url, data=params, headers={"X-Twilio-Signature": signature})
            self.repeats.append(
                {"url": url.split("?")[0], "same_answer": again.text == response.text, "status": again.status_code}
            )
        return response.text

    async def _register_oracle(self, http: httpx.AsyncClient, scenario: Scenario, call_sid: str) -> None:
        body = {
            "utterances": [{"text": text, "confidence": conf} for text, conf in scenario.oracle_script()],
            "wer": self.options.wer,
            "seed": self.options.seed,
            "noise_key": scenario.name,
        }
        response = await http.post(f"{self.base_url}/api/oracle/{call_sid}", json=body, headers=self._api_headers())
        if response.status_code != 200:
            raise ReplayError(
                f"the server refused the oracle ASR script (HTTP {response.status_code}: {response.text[:200]}); "
                "is it running with HANDOFF_ASR=oracle and the same HANDOFF_API_TOKEN?"
            )

    def _api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}

    async def _server_record(self, http: httpx.AsyncClient, call_sid: str) -> dict[str, Any]:
        response = await http.get(f"{self.base_url}/api/calls/{call_sid}", headers=self._api_headers())
        if response.status_code != 200:
            log.warning(
                "could not read the call record (HTTP %s); the result has the line's view only", response.status_code
            )
            return {}
        data: dict[str, Any] = response.json()
        return data

    # --- the media stream ---------------------------------------------------------------------------------

    async def _stream(self, url: str, call_sid: str, custom: dict[str, str], line: PhoneLine, max_ms: int) -> None:
        stream_sid = "MZ" + secrets.token_hex(16)
        signature = self.signer.sign(url)
        try:
            ws = await websockets.connect(url, additional_headers={"X-Twilio-Signature": signature}, max_size=2**22)
        except websockets.InvalidStatus as exc:
            raise ReplayError(
                f"the media stream upgrade to {url} was refused: HTTP {exc.response.status_code}"
            ) from exc
        seq = 0

        def next_seq() -> str:
            nonlocal seq
            seq += 1
            return str(seq)

        async with ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(
                json.dumps(
                    {
                        "event": "start",
                        "sequenceNumber": next_seq(),
                        "streamSid": stream_sid,
                        "start": {
                            "accountSid": ACCOUNT_SID,
                            "streamSid": stream_sid,
                            "callSid": call_sid,
                            "tracks": ["inbound"],
                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1},
                            "customParameters": custom,
                        },
                    }
                )
            )
            receiver = asyncio.create_task(_receive(ws, line))
            period = FRAME_MS / 1000 / self.options.speed
            next_at = time.perf_counter()
            chunk = 0
            waiting_since: float | None = None
            try:
                while not receiver.done():
                    if line.t_ms >= max_ms:
                        line.events.append(LineEvent(line.t_ms, "caller_hangup", {"why": "max_call_ms"}))
                        await _send_stop(ws, next_seq(), stream_sid, call_sid)
                        break
                    if self._redirected(call_sid):
                        line.events.append(LineEvent(line.t_ms, "rest_redirect"))
                        await _send_stop(ws, next_seq(), stream_sid, call_sid)
                        break
                    now = time.perf_counter()
                    waiting_since = (waiting_since or now) if line.waiting else None
                    tick = line.tick(waited_wall_s=now - waiting_since if waiting_since else 0.0)
                    if tick.hangup:
                        await _send_stop(ws, next_seq(), stream_sid, call_sid)
                        break
                    if tick.drop:  # the network drops the socket: no stop; the call itself goes on
                        await ws.close(code=1001)
                        break
                    chunk += 1
                    payload = base64.b64encode(tick.audio).decode()
                    await ws.send(
                        f'{{"event":"media","sequenceNumber":"{next_seq()}","media":{{"track":"inbound",'
                        f'"chunk":"{chunk}","timestamp":"{line.t_ms - FRAME_MS}","payload":"{payload}"}},'
                        f'"streamSid":"{stream_sid}"}}'
                    )
                    for digit in tick.dtmf:
                        await ws.send(
                            orjson.dumps(
                                {
                                    "event": "dtmf",
                                    "streamSid": stream_sid,
                                    "sequenceNumber": next_seq(),
                                    "dtmf": {"track": "inbound_track", "digit": digit},
                                }
                            ).decode()
                        )
                    for name in tick.marks:
                        await ws.send(
                            orjson.dumps(
                                {
                                    "event": "mark",
                                    "sequenceNumber": next_seq(),
                                    "streamSid": stream_sid,
                                    "mark": {"name": name},
                                }
                            ).decode()
                        )
                    next_at += period
                    delay = next_at - time.perf_counter()
                    await asyncio.sleep(max(delay, 0))
            except websockets.ConnectionClosed:
                pass
            finally:
                receiver.cancel()
                with suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await receiver
        line.events.append(LineEvent(line.t_ms, "stream_closed"))

    def _redirected(self, call_sid: str) -> bool:
        """Has the server given this live call new TwiML through REST? (Twilio then stops the stream.)"""
        if self.fake is None:
            return False
        while not self.fake.updates.empty():
            update = self.fake.updates.get_nowait()
            if update.call_sid == call_sid and update.redirected:
                self._redirect = update
        return self._redirect is not None

    # --- after the stream: TwiML, as Twilio would carry it out ------------------------------------------------

    async def _follow(
        self,
        http: httpx.AsyncClient,
        twiml: str,
        params: dict[str, str],
        scenario: Scenario,
        result: ReplayResult,
        line: PhoneLine,
    ) -> None:
        """Carry out TwiML as Twilio would, through dials, whispers, gathers, recordings and redirects."""
        said: list[str] = result.outcome.setdefault("twiml_said", [])
        for _ in range(MAX_TWIML_HOPS):
            next_twiml: str | None = None
            for verb in read_twiml(twiml):
                if verb.name == "Say":
                    said.append(verb.text)
                elif verb.name == "Hangup":
                    break
                elif verb.name == "Dial":
                    next_twiml = await self._dial(http, verb, params, scenario, result)
                    break
                elif verb.name == "Enqueue":
                    next_twiml = await self._enqueue(http, verb, params, result)
                    break
                elif verb.name == "Gather":
                    said.extend(child.text for child in verb.children if child.name == "Say")
                    digits = line.next_digits()
                    if digits is None:
                        continue  # no input: Twilio goes on to the next verb
                    result.events.append(
                        {"source": "line", "t_ms": line.t_ms, "kind": "gather", "detail": {"digits": digits}}
                    )
                    next_twiml = await self._post(
                        http, self._absolute(verb.attrs["action"]), {**params, "Digits": digits}
                    )
                    break
                elif verb.name == "Record":
                    next_twiml = await self._voicemail(http, verb, params, scenario, result, line)
                    break
                elif verb.name == "Redirect":
                    next_twiml = await self._post(http, self._absolute(verb.text), params)
                    break
            if next_twiml is None:
                break
            twiml = next_twiml

    async def _enqueue(
        self, http: httpx.AsyncClient, verb: Verb, params: dict[str, str], result: ReplayResult
    ) -> str | None:
        task = verb.find("Task")
        result.outcome.update({"enqueued": True, "workflow_sid": verb.attrs.get("workflowSid")})
        result.outcome["task_attributes"] = json.loads(task.text) if task is not None and task.text else None
        if "action" not in verb.attrs:
            return None
        queue_params = {**params, "QueueResult": "bridged", "QueueSid": "QU" + secrets.token_hex(16), "QueueTime": "12"}
        return await self._post(http, self._absolute(verb.attrs["action"]), queue_params)

    async def _dial(
        self, http: httpx.AsyncClient, dial: Verb, params: dict[str, str], scenario: Scenario, result: ReplayResult
    ) -> str | None:
        attempts: list[dict[str, Any]] = result.outcome.setdefault("attempts", [])
        behaviours = scenario.agent if isinstance(scenario.agent, list) else [scenario.agent]
        agent = self.options.agent or behaviours[min(len(attempts), len(behaviours) - 1)]
        noun = next((child for child in dial.children if child.name in ("Number", "Sip", "Client")), None)
        if noun is None:
            raise ReplayError("<Dial> without a <Number>, <Sip> or <Client>")
        target = (
            noun.text
            if noun.name != "Client"
            else "client:" + (noun.find("Identity").text if noun.find("Identity") else "")
        )
        attempt: dict[str, Any] = {"target_kind": noun.name.lower(), "target": target, "agent": agent}
        if noun.name == "Client":
            attempt["parameters"] = {
                p.attrs["name"]: p.attrs.get("value", "") for p in noun.children if p.name == "Parameter"
            }
        attempts.append(attempt)
        result.outcome.update({"kind": "transfer", "target": target, "agent": agent})
        agent_sid = new_call_sid()
        status = {
            "answer": "completed",
            "busy": "busy",
            "no-answer": "no-answer",
            "failed": "failed",
            "reject-whisper": "completed",
            "voicemail": "completed",
            "caller-hangs-up": "canceled",
        }.get(agent, "no-answer")
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
            whisper = read_twiml(await self._post(http, self._absolute(noun.attrs["url"]), leg))
            gather = next((v for v in whisper if v.name == "Gather"), None)
            spoken = [v.text for v in whisper if v.name == "Say"]
            if gather is not None:
                spoken = [c.text for c in gather.children if c.name == "Say"] + spoken
            attempt["whisper"] = " ".join(spoken)
            result.outcome["whisper"] = attempt["whisper"]
            if agent == "caller-hangs-up" and "action" in dial.attrs:
                # the caller hangs up while the agent hears the whisper: Twilio ends the dial first
                ended = {
                    **params,
                    "CallStatus": "completed",
                    "DialCallStatus": "canceled",
                    "DialCallSid": agent_sid,
                    "DialCallDuration": "0",
                }
                await self._post(http, self._absolute(dial.attrs["action"]), ended)
            if gather is not None and agent in ("answer", "caller-hangs-up"):
                answer = read_twiml(
                    await self._post(http, self._absolute(gather.attrs["action"]), {**leg, "Digits": "1"})
                )
                attempt["accept_answer"] = [v.name for v in answer]
            if agent == "caller-hangs-up":
                attempt["dial_status"] = "canceled"
                result.outcome["dial_status"] = "canceled"
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
        result.outcome["dial_status"] = status
        return await self._post(http, self._absolute(dial.attrs["action"]), dial_params)

    async def _voicemail(
        self,
        http: httpx.AsyncClient,
        verb: Verb,
        params: dict[str, str],
        scenario: Scenario,
        result: ReplayResult,
        line: PhoneLine,
    ) -> str | None:
        """The caller leaves a message: their next speech step (or silence), then the two callbacks Twilio sends."""
        message = line.next_message()
        recording_sid = "RE" + secrets.token_hex(16)
        account = self.fake.account_sid if self.fake is not None else ACCOUNT_SID
        url = f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{recording_sid}"
        duration = str(max(1, round(len(message[1]) / SAMPLE_RATE))) if message else "0"
        result.outcome["voicemail"] = {
            "recording_sid": recording_sid,
            "duration_s": int(duration),
            "text": message[0] if message else None,
        }
        if self.fake is not None and message is not None:  # Twilio keeps the recording; the server may fetch it
            self.fake.recordings[recording_sid] = _wav(message[1])
        status_url = verb.attrs.get("recordingStatusCallback")
        if status_url and message is not None:
            await self._post(
                http,
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
        return await self._post(http, self._absolute(verb.attrs["action"]), action)

    # --- the result ---------------------------------------------------------------------------------------

    def _collect(self, result: ReplayResult, record: dict[str, Any]) -> None:
        result.server_record = record
        result.outcome["kind"] = _final_kind(result.outcome, record)
        result.transcript = [
            {k: turn.get(k) for k in ("speaker", "text", "start_ms", "end_ms", "confidence")}
            for turn in record.get("turns", [])
        ]
        result.prompts = [
            {
                "prompt_id": p["prompt_id"],
                "text": p["text"],
                "start_ms": p["play_start_ms"],
                "duration_ms": p["duration_ms"],
                "cut_off": p["cut_off"],
                "heard_ms": p["heard_ms"],
            }
            for p in record.get("prompts", [])
        ]
        decision = record.get("decision")
        result.decision = decision
        result.handoff = decision.get("package") if decision else None
        result.latencies = record.get("latencies", [])
        result.events.extend({"source": "server", **entry} for entry in record.get("timeline", []))
        result.events.sort(key=lambda e: e["t_ms"])


def _wav(ulaw: bytes) -> bytes:
    """The message as Twilio serves a recording: 8 kHz 16-bit PCM WAV."""
    import io
    import wave

    from voice.codec import ulaw_to_pcm16

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(ulaw_to_pcm16(ulaw))
    return buffer.getvalue()


def _final_kind(outcome: dict[str, Any], record: dict[str, Any]) -> str:
    """What the call came to, in one word: voicemail, enqueue, transfer, callback, ticket or hangup."""
    if outcome.get("by") == "caller":
        return "hangup"
    if outcome.get("voicemail"):
        return "voicemail"
    if outcome.get("enqueued"):
        return "enqueue"
    attempts = outcome.get("attempts", [])
    if any(a.get("agent") == "answer" and a.get("dial_status") == "completed" for a in attempts):
        return "transfer"
    if record.get("callbacks"):
        return "callback"
    decision = record.get("decision") or {}
    if decision.get("mode") == "ticket":
        return "ticket"
    return "transfer" if attempts else "hangup"


async def _receive(ws: ClientConnection, line: PhoneLine) -> None:
    """Take the server's media, marks and clears onto the line until it closes the stream."""
    async for message in ws:
        data = orjson.loads(message)
        event = data.get("event")
        if event == "media":
            line.bot_media(base64.b64decode(data["media"]["payload"]))
        elif event == "mark":
            line.bot_mark(data["mark"]["name"])
        elif event == "clear":
            line.bot_clear()


async def _send_stop(ws: ClientConnection, seq: str, stream_sid: str, call_sid: str) -> None:
    await ws.send(
        orjson.dumps(
            {
                "event": "stop",
                "sequenceNumber": seq,
                "streamSid": stream_sid,
                "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid},
            }
        ).decode()
    )


def _hung_up(line: PhoneLine) -> bool:
    return any(e.kind == "caller_hangup" for e in line.events)


def _event(event: LineEvent, source: str) -> dict[str, Any]:
    return {"source": source, "t_ms": event.t_ms, "kind": event.kind, "detail": event.detail}


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name).strip("-") or "call"


@asynccontextmanager
async def serve_in_process(app: Any) -> AsyncIterator[str]:
    """Run `app` with uvicorn on a free loopback port in this event loop; yields its base URL."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise ReplayError("the in-process server stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def replay_in_process(
    scenario: Scenario,
    options: ReplayOptions,
    *,
    settings: Any = None,
    caller_synthesizer: Any = None,
) -> ReplayResult:
    """Replay against a fresh server in this process, on a real loopback socket, with Twilio's REST API faked
    on loopback too (so warm transfers go through the real twilio client); oracle or vosk ASR."""
    import tempfile

    from pydantic import SecretStr

    from telephony.app import create_app
    from telephony.services import build_services
    from telephony.settings import load_settings
    from voice.stt import OracleRecognizerFactory
    from voice.tts import SpeechSynthesizer

    auth_token = secrets.token_hex(16)
    api_token = secrets.token_hex(16)
    base_settings = settings or load_settings()
    own_synth = caller_synthesizer is None
    caller_synth = caller_synthesizer or SpeechSynthesizer(base_settings.tts_cache_dir, rate=165)
    try:
        audio = await caller_audio(scenario, caller_synth.synthesize)
        with tempfile.TemporaryDirectory(prefix="handoff-replay-") as data_dir:
            async with TwilioFake.running(base_settings.twilio_account_sid, auth_token) as fake:
                overrides: dict[str, Any] = {
                    "twilio_auth_token": SecretStr(auth_token),
                    "api_token": SecretStr(api_token),
                    "asr": options.asr,
                    "twilio_api_base_url": fake.base_url,
                    "fixed_now": scenario.at,
                    "rest_transfers": scenario.rest_transfers,
                }
                if base_settings.database_url is None:
                    overrides["data_dir"] = Path(data_dir)
                run_settings = base_settings.model_copy(update=overrides)
                recognizers = (
                    OracleRecognizerFactory(options.wer or 0.0, options.seed or 0) if options.asr == "oracle" else None
                )
                services = build_services(run_settings, recognizers=recognizers)
                async with serve_in_process(create_app(services)) as base_url:
                    player = TwilioPlayer(
                        base_url, auth_token=auth_token, api_token=api_token, options=options, fake=fake
                    )
                    result = await player.run(scenario, audio)
                result.outcome["rest_requests"] = [
                    {"method": r.method, "path": r.path, "form": dict(r.form)} for r in fake.requests
                ]
                return result
    finally:
        if own_synth:
            caller_synth.close()
