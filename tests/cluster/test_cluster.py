"""Beyond one machine (issue 14): three instances of `handoff serve` on one PostgreSQL database behind nginx.
The webhook, the media stream and `<Connect action>` of one call land on three different instances and the call
transfers with its summary; an instance killed with a live stream, or stopped with SIGTERM, loses no call.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import httpx

from telephony.replay.checks import check
from telephony.replay.player import ReplayOptions, TwilioPlayer, caller_audio
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import Scenario, load_scenario
from telephony.replay.wires import NetworkWire
from telephony.twilio.signatures import TwilioSignatureCheck
from tests.cluster.conftest import Cluster, running_cluster
from tests.faults.conftest import WEBHOOK_DEADLINE_S
from tests.telephony.conftest import FixedSynthesizer
from tests.telephony.server.harness import API, AUTH, HEADERS

ROOT = Path(__file__).resolve().parents[2]
SIGNER = TwilioSignatureCheck(AUTH)
SPEED = 10.0


def player(cluster: Cluster) -> TwilioPlayer:
    options = ReplayOptions(clock="wall", speed=SPEED)
    return TwilioPlayer(NetworkWire(cluster.nginx.base, SPEED), auth_token=AUTH, api_token=API, options=options,
                        fake=cluster.fake)  # fmt: skip


def scenario_for(call_sid: str, name: str) -> Scenario:
    """A scenario from audio_fixtures, played as the call `call_sid` (each test's own, in a shared database)."""
    scenario = load_scenario(ROOT / "audio_fixtures" / "scenarios" / f"{name}.yaml")
    return scenario.model_copy(update={"call": scenario.call.model_copy(update={"call_sid": call_sid})})


async def play_and_check(cluster: Cluster, scenario: Scenario, call_sid: str) -> ReplayResult:
    """Play the scenario through nginx as `call_sid` and hold it to its expectations."""
    await cluster.script_oracle(scenario, call_sid)
    audio = await caller_audio(scenario, FixedSynthesizer(1500).synthesize)
    result = await player(cluster).run(scenario, audio)
    failed = [c for c in check(result, scenario.expect) if not c.ok]
    assert not failed, failed
    return result


def upstream_of(cluster: Cluster, method: str, path: str) -> str:
    (served,) = [r.upstream for r in cluster.nginx.requests() if r.method == method and r.uri == path]
    return served


async def test_webhook_stream_and_action_on_three_instances_transfer_with_the_summary(
    cluster_database: str, tmp_path: Path, tts_dir: Path
) -> None:
    call_sid = "CA" + "3" * 32
    scenario = scenario_for(call_sid, "talk_to_a_person")
    async with running_cluster(tmp_path, cluster_database, tts_dir) as cluster:
        result = await play_and_check(cluster, scenario, call_sid)
        webhook = upstream_of(cluster, "POST", "/twilio/voice")
        stream = upstream_of(cluster, "GET", "/twilio/media")
        action = upstream_of(cluster, "POST", "/twilio/stream-ended")
        assert len({webhook, stream, action}) == 3, (webhook, stream, action)
        assert "order" in result.outcome["whisper"].lower()  # the summary, read by whichever instance briefed


async def speak_then_wait(
    cluster: Cluster, call_sid: str, sentence: str
) -> tuple[asyncio.Task[object], dict[str, str]]:
    """A caller who says one sentence and then listens; returns the playing stream and the call's webhook form."""
    steps: list[dict[str, object]] = [{"say": sentence}, {"silence_ms": 60000}, {"hangup": True}]
    scenario = Scenario.model_validate(
        {"name": "cluster", "call": {"from": "+15551230007", "call_sid": call_sid}, "caller": steps}
    )
    await cluster.script_oracle(scenario, call_sid)
    playing = player(cluster)
    audio = await caller_audio(scenario, FixedSynthesizer(1500).synthesize)
    task: asyncio.Task[object] = asyncio.create_task(playing.stream_only(scenario, audio, call_sid))
    form = {**playing._call_params(scenario, call_sid), "CallStatus": "in-progress"}
    return task, form


async def holder(cluster: Cluster, call_sid: str, sentence: str) -> int:
    """Wait until one instance holds the call's stream and the caller's sentence is stored; its index."""
    async with asyncio.timeout(60), httpx.AsyncClient(timeout=2) as http:
        while True:
            held = [n for n, i in enumerate(cluster.instances) if i.live_calls() == 1]
            stored = await http.get(f"{cluster.nginx.base}/api/calls/{call_sid}", headers=HEADERS)
            said = [t["text"] for t in stored.json().get("transcript") or [] if t["speaker"] == "caller"]
            if held and sentence in said:
                return held[0]
            await asyncio.sleep(0.1)


async def signed(base: str, path: str, form: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=15) as http:
        url = base + path
        return await http.post(url, data=form, headers={"X-Twilio-Signature": SIGNER.sign(url, form)})


async def handed_on(cluster: Cluster, call_sid: str, form: dict[str, str], words: str) -> httpx.Response:
    """Twilio asks `<Connect action>` through the load balancer: a transfer whose whisper carries `words`."""
    started = time.perf_counter()
    answer = await signed(cluster.nginx.base, f"/twilio/stream-ended?call={call_sid}", form)
    assert time.perf_counter() - started < WEBHOOK_DEADLINE_S
    assert answer.status_code == 200 and "<Dial" in answer.text, answer.text
    leg = {**form, "CallSid": "CA" + "8" * 32, "ParentCallSid": call_sid}
    whisper = await signed(cluster.nginx.base, f"/twilio/whisper?call={call_sid}&attempt=0", leg)
    assert whisper.status_code == 200 and words in whisper.text.lower(), whisper.text
    return answer


async def test_killing_the_instance_with_the_live_stream_loses_nothing_the_caller_said(
    cluster_database: str, tmp_path: Path, tts_dir: Path
) -> None:
    call_sid = "CA" + "4" * 32
    sentence = "I want to talk to a person about a double charge on my bill."
    async with running_cluster(tmp_path, cluster_database, tts_dir) as cluster:
        playing, form = await speak_then_wait(cluster, call_sid, sentence)
        victim = cluster.instances[await holder(cluster, call_sid, sentence)]
        victim.signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        with contextlib.suppress(Exception):  # the stream died with the instance
            await asyncio.wait_for(playing, 10)
        await handed_on(cluster, call_sid, form, "bill")
        served = upstream_of(cluster, "POST", "/twilio/stream-ended")
        assert victim.upstream not in served.split(", ")[-1]


async def test_sigterm_hands_the_live_call_on_and_the_instance_exits(
    cluster_database: str, tmp_path: Path, tts_dir: Path
) -> None:
    call_sid = "CA" + "5" * 32
    sentence = "My order from last week never arrived and I'm getting worried about it."
    async with running_cluster(tmp_path, cluster_database, tts_dir, HANDOFF_DRAIN_GRACE_S="0.5") as cluster:
        playing, form = await speak_then_wait(cluster, call_sid, sentence)
        draining = cluster.instances[await holder(cluster, call_sid, sentence)]
        draining.signal(signal.SIGTERM)
        await asyncio.wait_for(playing, 20)  # the instance closed the stream: the call goes on at Twilio
        # uvicorn re-raises the SIGTERM once it has shut down: the exit systemd expects from a clean stop
        assert draining.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "draining: handed 1 live calls on" in draining.log.read_text()
        await handed_on(cluster, call_sid, form, "order")
        async with httpx.AsyncClient(timeout=5) as http:
            stored = (await http.get(f"{cluster.nginx.base}/api/calls/{call_sid}", headers=HEADERS)).json()
        assert stored["decision"]["reason"] == "server_draining"
        assert sentence in [t["text"] for t in stored["transcript"] if t["speaker"] == "caller"]


async def test_a_conference_transfer_spread_over_three_instances_bridges_the_agent_with_the_brief(
    cluster_database: str, tmp_path: Path, tts_dir: Path
) -> None:
    call_sid = "CA" + "6" * 32
    scenario = scenario_for(call_sid, "conference_accept")
    conference = {"HANDOFF_TRANSFER_MODE": "conference", "HANDOFF_REST_TRANSFERS": "true"}
    async with running_cluster(tmp_path, cluster_database, tts_dir, **conference) as cluster:
        await play_and_check(cluster, scenario, call_sid)
        stream = upstream_of(cluster, "GET", "/twilio/media")
        served = {r.upstream for r in cluster.nginx.requests() if r.uri.startswith("/twilio/conference/")}
        assert served - {stream}, "every conference webhook reached the stream's own instance: nothing was spread"
        async with httpx.AsyncClient(timeout=5) as http:
            stored = (await http.get(f"{cluster.nginx.base}/api/calls/{call_sid}", headers=HEADERS)).json()
        assert stored["handoff"]["status"] == "bridged" and stored["progress"]["bridged"]
        assert not stored["progress"]["caller_gone"] and not stored["callbacks"]  # no callback for a served caller
