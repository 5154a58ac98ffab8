"""Helpers for tests of the app on a loopback socket: services with test secrets, signed webhooks, upgrades."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from telephony.desk.delivery import verify
from telephony.replay.player import ReplayOptions, TwilioPlayer, caller_audio
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import Scenario, load_scenario
from telephony.replay.twilio_fake import TwilioFake
from telephony.replay.wires import VirtualWire
from telephony.server.services import Services, build_services
from telephony.server.settings import Settings
from telephony.twilio.signatures import TwilioSignatureCheck
from tests.telephony.conftest import CALL_SID, FixedSynthesizer
from voice.oracle import OracleRecognizerFactory

AUTH = "test-auth-token"
API = "test-api-token"
SIGNER = TwilioSignatureCheck(AUTH)


def make_services(**overrides: object) -> Services:
    fields: dict[str, object] = {
        "twilio_auth_token": SecretStr(AUTH),
        "api_token": SecretStr(API),
        "asr": "oracle",
        "rest_transfers": False,
        "data_dir": Path(tempfile.mkdtemp(prefix="handoff-test-")),
        "_env_file": None,
    }
    settings = Settings(**{**fields, **overrides})  # type: ignore[arg-type]
    return build_services(settings, recognizers=OracleRecognizerFactory(), synthesizer=FixedSynthesizer())


def call_params(**extra: str) -> dict[str, str]:
    return {"CallSid": CALL_SID, "AccountSid": "AC" + "0" * 32, "From": "+15551230000", "To": "+15559870000",
            "CallStatus": "ringing", "Direction": "inbound", **extra}  # fmt: skip


async def post(base: str, path: str, params: dict[str, str], signature: str | None = "sign") -> httpx.Response:
    url = base + path
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = SIGNER.sign(url, params)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    async with httpx.AsyncClient() as http:
        return await http.post(url, data=params, headers=headers)


async def open_media(base: str, signed_url: str | None) -> websockets.ClientConnection:
    url = base.replace("http://", "ws://") + "/twilio/media"
    headers = {"X-Twilio-Signature": SIGNER.sign(signed_url)} if signed_url else {}
    return await websockets.connect(url, additional_headers=headers, close_timeout=1)


ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "audio_fixtures" / "scenarios"
SECRET = "webhook-secret"
HEADERS = {"Authorization": f"Bearer {API}"}


@dataclass
class Receiver:
    """A help desk's webhook endpoint: records deliveries; answers 500 while `failing`."""

    failing: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> JSONResponse:
            body = await request.body()
            headers = request.headers
            ok = verify(SECRET, headers["x-handoff-timestamp"], body, headers["x-handoff-signature"])
            self.received.append({"ok": ok, "id": headers["x-handoff-delivery"], "body": json.loads(body)})
            return JSONResponse({}, status_code=500 if self.failing else 200)

        return app


@dataclass
class Server:
    """The app served on loopback (the API is read over real HTTP); calls are replayed into the same app on the
    virtual clock, so what a test sees does not depend on how busy the machine is."""

    base: str
    services: Services
    fake: TwilioFake
    app: FastAPI

    async def replay(self, name: str, tts: Path) -> ReplayResult:
        return await self.replay_scenario(load_scenario(SCENARIOS / name), tts)

    async def replay_scenario(self, scenario: Scenario, tts: Path) -> ReplayResult:
        from voice.tts import SpeechSynthesizer

        synth = SpeechSynthesizer(tts, rate=165)
        try:
            audio = await caller_audio(scenario, synth.synthesize)
        finally:
            synth.close()

        async def settle(call_sid: str) -> None:
            session = self.services.streams.get(call_sid)
            if session is not None:
                await session.settle()

        wire = VirtualWire(self.app, settle)
        player = TwilioPlayer(wire, auth_token=AUTH, api_token=API, options=ReplayOptions(), fake=self.fake)
        return await player.run(scenario, audio)

    async def get(self, path: str) -> Any:
        async with httpx.AsyncClient() as http:
            response = await http.get(self.base + path, headers=HEADERS)
        assert response.status_code == 200, response.text
        return response.json()


def settings_for(data_dir: Path, fake: TwilioFake, **extra: Any) -> Settings:
    return Settings(
        twilio_auth_token=SecretStr(AUTH),
        api_token=SecretStr(API),
        asr="oracle",
        data_dir=data_dir,
        twilio_api_base_url=fake.base_url,
        twilio_account_sid=fake.account_sid,
        fixed_now="2026-11-24T15:00:00Z",
        _env_file=None,
        **extra,  # type: ignore[call-arg]
    )
