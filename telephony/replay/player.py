"""`handoff replay`: play Twilio's part of a call against a handoff server, and report what happened.

The harness does what Twilio does: it POSTs the signed voice webhook, opens the stream URL the TwiML names
(signed handshake), sends `connected`, `start` and the caller's audio as 20 ms frames (silence between
utterances, as a phone line does), DTMF, mark echoes when the bot audio before them would have finished
playing, and honours `clear`. When the stream closes it requests the `<Connect action>` URL and follows the
TwiML (a `<Dial>` through its whisper and `<Dial action>`), then reads the server's call record from its API.
The wire decides the socket and the clock (`telephony.replay.wires`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

from telephony.replay.clock import SimulatedClock
from telephony.replay.errors import ReplayError
from telephony.replay.follow import CallFlow, new_call_sid
from telephony.replay.line import LineEvent, PhoneLine
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import AgentBehaviour, Scenario
from telephony.replay.twilio_fake import CallUpdate, TwilioFake
from telephony.replay.twiml_reader import read_twiml
from telephony.replay.wires import StreamConnection, Wire
from telephony.twilio.signatures import TwilioSignatureCheck
from voice.codec import FRAME_MS, SAMPLE_RATE
from voice.wavfile import read_ulaw_wav, write_ulaw_wav

log = logging.getLogger(__name__)

ACCOUNT_SID = "AC" + "0" * 32
REPEATABLE = ("/twilio/dial-status", "/twilio/recording-status", "/twilio/voicemail", "/twilio/enqueue-status")
RECORD_WAIT_S = 5.0  # the most the stored record is waited for, while the server still has writes of the call queued
PATIENCE_WALL_S = 0.3  # on the wall clock, a caller waits at least this long for a reply that never comes


@dataclass
class ReplayOptions:
    """How to play the call: `clock` virtual (in process, as fast as the server settles) or wall (`speed` 1 is
    real time, 10 is ten times faster)."""

    speed: float = 1.0
    asr: str = "oracle"
    wer: float | None = None
    seed: int | None = None
    agent: AgentBehaviour | None = None  # overrides the scenario's agent behaviour
    out_dir: Path | None = None
    clock: Literal["virtual", "wall"] = "virtual"


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


class StreamMessages:
    """Twilio's messages on one media stream, with the sequence counter they share."""

    def __init__(self, call_sid: str, stream_sid: str) -> None:
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self._seq = 0
        self._chunk = 0

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    def connected(self) -> str:
        return '{"event":"connected","protocol":"Call","version":"1.0.0"}'

    def start(self, custom: dict[str, str]) -> str:
        start = {
            "accountSid": ACCOUNT_SID,
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1},
            "customParameters": custom,
        }
        message = {"event": "start", "sequenceNumber": self._next(), "streamSid": self.stream_sid, "start": start}
        return orjson.dumps(message).decode()

    def media(self, ulaw: bytes, timestamp_ms: int) -> str:
        self._chunk += 1
        payload = base64.b64encode(ulaw).decode()
        return (
            f'{{"event":"media","sequenceNumber":"{self._next()}","media":{{"track":"inbound",'
            f'"chunk":"{self._chunk}","timestamp":"{timestamp_ms}","payload":"{payload}"}},'
            f'"streamSid":"{self.stream_sid}"}}'
        )

    def dtmf(self, digit: str) -> str:
        return orjson.dumps(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        ).decode()

    def mark(self, name: str) -> str:
        message = {
            "event": "mark",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        }
        return orjson.dumps(message).decode()

    def stop(self) -> str:
        return orjson.dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid},
            }
        ).decode()


class TwilioPlayer:
    """Plays Twilio against the server behind `wire`."""

    def __init__(
        self,
        wire: Wire,
        *,
        auth_token: str,
        api_token: str | None,
        options: ReplayOptions,
        fake: TwilioFake | None = None,
        clock: SimulatedClock | None = None,
    ) -> None:
        self.wire = wire
        self.clock = clock  # the server's clock, when it follows this call
        self.fake = fake  # Twilio's REST API, faked on loopback: how the harness learns of a REST transfer
        self.repeat_callbacks = False
        self.repeats: list[dict[str, Any]] = []
        self._redirect: CallUpdate | None = None
        self.base_url = wire.base_url
        self.signer = TwilioSignatureCheck(auth_token)
        self.api_token = api_token
        self.options = options
        self._http: httpx.AsyncClient | None = None

    async def run(self, scenario: Scenario, audio: list[bytes | None]) -> ReplayResult:
        call_sid = scenario.call.call_sid or new_call_sid()
        self.repeat_callbacks = scenario.repeat_callbacks
        result = ReplayResult(scenario=scenario.name, call_sid=call_sid, asr=self.options.asr, clock=self.wire.clock)
        line = PhoneLine(list(scenario.caller), audio)
        if self.clock is not None:
            self.clock.watch(line, result)
        async with self.wire.http() as http:
            self._http = http
            if self.options.asr == "oracle":
                await self._register_oracle(scenario, call_sid)
            params = self._call_params(scenario, call_sid)
            if self.fake is not None:
                self.fake.add_call(call_sid, to=scenario.call.to_number, from_=scenario.call.from_number)
                for path, status, times in scenario.twilio_failures():
                    self.fake.fail_next(path, status=status, times=times)
            verbs = read_twiml(await self.post(self.base_url + "/twilio/voice", params))
            connect = next((v for v in verbs if v.name == "Connect"), None)
            stream = connect.find("Stream") if connect else None
            if connect is None or stream is None or "url" not in stream.attrs:
                raise ReplayError("the voice webhook did not answer <Connect><Stream url=...>")
            custom = {p.attrs["name"]: p.attrs.get("value", "") for p in stream.children if p.name == "Parameter"}
            await self._stream(stream.attrs["url"], call_sid, custom, line, scenario.max_call_ms)
            result.add_line_events(line.events)
            flow = CallFlow(
                self.post,
                self.absolute,
                scenario,
                result,
                line,
                agent_override=self.options.agent,
                recordings=self.fake.recordings if self.fake is not None else None,
                account_sid=self.fake.account_sid if self.fake is not None else ACCOUNT_SID,
                fake=self.fake,
            )
            hung_up = any(e.kind == "caller_hangup" for e in line.events)
            if self._redirect is not None:  # the server moved the call with REST: Twilio runs the new TwiML
                result.outcome["moved_by"] = "rest"
                twiml = self._redirect.twiml or await self.post(self.absolute(self._redirect.url or ""), params)
                await flow.follow(twiml, {**params, "CallStatus": "in-progress"})
            elif connect.attrs.get("action") and not hung_up:
                twiml = await self.post(self.absolute(connect.attrs["action"]), {**params, "CallStatus": "in-progress"})
                await flow.follow(twiml, params)
            elif hung_up:
                result.outcome = {"kind": "hangup", "by": "caller"}
            record = await self._server_record(call_sid)
        self._http = None
        result.collect(record)
        if self.repeats:
            result.outcome["repeated_callbacks"] = self.repeats
        if self.options.out_dir is not None:
            self.options.out_dir.mkdir(parents=True, exist_ok=True)
            wav = self.options.out_dir / f"{_slug(scenario.name)}.bot.wav"
            write_ulaw_wav(wav, bytes(line.heard))
            result.bot_audio_wav = str(wav)
        return result

    async def stream_only(self, scenario: Scenario, audio: list[bytes | None], call_sid: str) -> dict[str, str]:
        """Play a call up to the end of its media stream, and stop before Twilio asks `<Connect action>`: what a
        server that dies mid-call has seen. Returns the call's webhook parameters, to carry it on elsewhere."""
        line = PhoneLine(list(scenario.caller), audio)
        async with self.wire.http() as http:
            self._http = http
            try:
                if self.options.asr == "oracle":
                    await self._register_oracle(scenario, call_sid)
                params = self._call_params(scenario, call_sid)
                verbs = read_twiml(await self.post(self.base_url + "/twilio/voice", params))
                connect = next((v for v in verbs if v.name == "Connect"), None)
                stream = connect.find("Stream") if connect else None
                if stream is None or "url" not in stream.attrs:
                    raise ReplayError("the voice webhook did not answer <Connect><Stream url=...>")
                custom = {p.attrs["name"]: p.attrs.get("value", "") for p in stream.children if p.name == "Parameter"}
                await self._stream(stream.attrs["url"], call_sid, custom, line, scenario.max_call_ms)
            finally:
                self._http = None
        return params

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

    def absolute(self, url: str) -> str:
        return url if "://" in url else self.base_url + url

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise ReplayError("the player is not running a call")
        return self._http

    async def post(self, url: str, params: dict[str, str]) -> str:
        """POST a signed webhook as Twilio does; a repeatable status callback is sent twice when asked."""
        signature = self.signer.sign(url, params)
        response = await self.http.post(url, data=params, headers={"X-Twilio-Signature": signature})
        if response.status_code not in (200, 204):
            raise ReplayError(f"POST {url} answered HTTP {response.status_code}: {response.text[:300]}")
        if self.repeat_callbacks and any(path in url for path in REPEATABLE):
            # Twilio may deliver a status callback twice; the second must change nothing and answer the same
            again = await self.http.post(url, data=params, headers={"X-Twilio-Signature": signature})
            self.repeats.append(
                {"url": url.split("?")[0], "same_answer": again.text == response.text, "status": again.status_code}
            )
        return response.text

    async def _register_oracle(self, scenario: Scenario, call_sid: str) -> None:
        body = {
            "utterances": [{"text": text, "confidence": conf} for text, conf in scenario.oracle_script()],
            "wer": self.options.wer,
            "seed": self.options.seed,
            "noise_key": scenario.name,
        }
        response = await self.http.post(
            f"{self.base_url}/api/oracle/{call_sid}", json=body, headers=self._api_headers()
        )
        if response.status_code != 200:
            raise ReplayError(
                f"the server refused the oracle ASR script (HTTP {response.status_code}: {response.text[:200]}); "
                "is it running with HANDOFF_ASR=oracle and the same HANDOFF_API_TOKEN?"
            )

    def _api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}

    async def _server_record(self, call_sid: str) -> dict[str, Any]:
        """The call as the server stored it, once the writes it still had queued for the store are in (a loaded
        machine's store can be seconds behind the call), or after RECORD_WAIT_S as it stands then."""
        deadline = time.monotonic() + RECORD_WAIT_S
        while True:
            response = await self.http.get(f"{self.base_url}/api/calls/{call_sid}", headers=self._api_headers())
            if response.status_code != 200:
                log.warning(
                    "could not read the call record (HTTP %s); the result has the line's view only",
                    response.status_code,
                )
                return {}
            data: dict[str, Any] = response.json()
            if not data.get("writes_pending") or time.monotonic() > deadline:
                return data
            await asyncio.sleep(0.1)

    # --- the media stream ---------------------------------------------------------------------------------

    async def _stream(self, url: str, call_sid: str, custom: dict[str, str], line: PhoneLine, max_ms: int) -> None:
        messages = StreamMessages(call_sid, "MZ" + secrets.token_hex(16))
        headers = {"X-Twilio-Signature": self.signer.sign(url)}
        stream = await self.wire.open_stream(url, headers, call_sid)
        await stream.send(messages.connected())
        await stream.send(messages.start(custom))
        patient = self.wire.clock == "virtual"  # the server has settled: a reply that has not come, will not
        waiting_since: float | None = None
        try:
            while not stream.closed:
                _take_server_messages(stream, line)
                if line.t_ms >= max_ms:
                    line.events.append(LineEvent(line.t_ms, "caller_hangup", {"why": "max_call_ms"}))
                    await stream.send(messages.stop())
                    break
                if self._redirected(call_sid):
                    line.events.append(LineEvent(line.t_ms, "rest_redirect"))
                    await stream.send(messages.stop())
                    break
                now = time.perf_counter()
                waiting_since = (waiting_since or now) if line.waiting else None
                waited = float("inf") if patient else (now - waiting_since if waiting_since else 0.0)
                tick = line.tick(waited_wall_s=waited)
                if tick.hangup:
                    await stream.send(messages.stop())
                    break
                if tick.drop:  # the network drops the socket: no stop; the call itself goes on
                    await stream.drop()
                    break
                await stream.send(messages.media(tick.audio, line.t_ms - FRAME_MS))
                for digit in tick.dtmf:
                    await stream.send(messages.dtmf(digit))
                for name in tick.marks:
                    await stream.send(messages.mark(name))
                await stream.next_frame()
        finally:
            await stream.finish()
        line.events.append(LineEvent(line.t_ms, "stream_closed"))

    def _redirected(self, call_sid: str) -> bool:
        """Has the server given this live call new TwiML through REST? (Twilio then stops the stream.)"""
        if self.fake is None:
            return False
        self._redirect = self._redirect or self.fake.redirect_of(call_sid)
        return self._redirect is not None


def _take_server_messages(stream: StreamConnection, line: PhoneLine) -> None:
    """Put what the server sent (media, marks, clears) onto the line."""
    for message in stream.take():
        data = orjson.loads(message)
        event = data.get("event")
        if event == "media":
            line.bot_media(base64.b64decode(data["media"]["payload"]))
        elif event == "mark":
            line.bot_mark(data["mark"]["name"])
        elif event == "clear":
            line.bot_clear()


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name).strip("-") or "call"
