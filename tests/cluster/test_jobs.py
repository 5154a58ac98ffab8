"""Background work on PostgreSQL's job queue (issue 14): three instances behind nginx record help-desk deliveries
and callbacks with their jobs, two `handoff worker` processes race for them, and on the receiving side (the
help desk, Twilio's REST API) each delivery arrives once and each due callback is dialled once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from telephony.replay.in_process import serve_in_process
from telephony.replay.player import ReplayOptions, TwilioPlayer, caller_audio
from telephony.replay.scenario import load_scenario
from telephony.replay.wires import NetworkWire
from telephony.store import Store
from tests.cluster.conftest import Cluster, running_cluster
from tests.telephony.conftest import FixedSynthesizer
from tests.telephony.desk.test_delivery import Receiver
from tests.telephony.server.harness import API, AUTH, SECRET

ROOT = Path(__file__).resolve().parents[2]
CALLS = 4
SPEED = 10.0


async def call_ending_in_a_callback(cluster: Cluster, n: int) -> str:
    """A caller who hangs up while the agent hears the whisper: a handoff (delivered) and a callback (dialled)."""
    scenario = load_scenario(ROOT / "audio_fixtures" / "scenarios" / "caller_hangs_up_during_whisper.yaml")
    call_sid = f"CA{n:032d}"
    scenario = scenario.model_copy(update={"call": scenario.call.model_copy(update={"call_sid": call_sid})})
    await cluster.script_oracle(scenario, call_sid)
    options = ReplayOptions(clock="wall", speed=SPEED)
    player = TwilioPlayer(NetworkWire(cluster.nginx.base, SPEED), auth_token=AUTH, api_token=API, options=options,
                          fake=cluster.fake)  # fmt: skip
    await player.run(scenario, await caller_audio(scenario, FixedSynthesizer(1500).synthesize))
    return call_sid


def dialled_callbacks(cluster: Cluster) -> Counter[int]:
    """Callback ids of the agent calls the workers placed (Twilio's side: the fake's created calls)."""
    ids: Counter[int] = Counter()
    for created in cluster.fake.created:
        query = parse_qs(urlsplit(created.url).query)
        if urlsplit(created.url).path == "/twilio/callback/agent":
            ids[int(query["callback"][0])] += 1
    return ids


def done(cluster: Cluster, desk: Receiver, callbacks: set[int], deliveries: set[str]) -> bool:
    """Every callback dialled and every delivery received at least once."""
    received = {s.headers["x-handoff-delivery"] for s in desk.seen}
    return set(dialled_callbacks(cluster)) == callbacks and received == deliveries


async def test_two_workers_send_each_delivery_once_and_dial_each_callback_once(
    cluster_database: str, tmp_path: Path, tts_dir: Path
) -> None:
    desk = Receiver()
    async with serve_in_process(desk.app()) as desk_base:
        desk.base = desk_base
        env = {
            "HANDOFF_JOBS": "queue", "HANDOFF_REST_TRANSFERS": "true", "HANDOFF_WEBHOOK_URLS": f'["{desk.url()}"]',
            "HANDOFF_WEBHOOK_SECRET": SECRET, "HANDOFF_CALLBACK_DIALER": "true",
            "HANDOFF_CALLBACK_FROM": "+15550001234",
        }  # fmt: skip
        async with running_cluster(tmp_path, cluster_database, tts_dir, workers=2, **env) as cluster:
            sids = [await call_ending_in_a_callback(cluster, n) for n in range(1, CALLS + 1)]
            store = Store(cluster_database)
            try:
                callbacks = {int(str(c["id"])) for c in store.list_callbacks() if c["call_sid"] in sids}
                deliveries = {str(d["delivery_id"]) for d in store.deliveries()}
            finally:
                store.close()
            assert len(callbacks) == CALLS and len(deliveries) == CALLS
            async with asyncio.timeout(60):
                while not done(cluster, desk, callbacks, deliveries):  # noqa: ASYNC110 - other processes: polling
                    await asyncio.sleep(0.2)
            await asyncio.sleep(3)  # long enough for a second dial or send to show up
            received = Counter(s.headers["x-handoff-delivery"] for s in desk.seen)
            assert received == dict.fromkeys(deliveries, 1)
            assert dialled_callbacks(cluster) == dict.fromkeys(callbacks, 1)
            logs = [w.log.read_text() for w in cluster.workers]
            assert all("worker: taking jobs" in text for text in logs)
