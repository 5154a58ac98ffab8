"""Cluster fixtures: a throwaway PostgreSQL database (tests/postgres.py), instances of `handoff serve` and nginx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from telephony.replay.scenario import Scenario
from telephony.replay.twilio_fake import TwilioFake
from telephony.store import Store
from tests.cluster.harness import Instance, Nginx, require_nginx
from tests.faults.test_kill import free_port
from tests.postgres import reset_postgres
from tests.telephony.server.harness import AUTH, HEADERS


@dataclass
class Cluster:
    instances: list[Instance]
    nginx: Nginx
    fake: TwilioFake
    workers: list[Instance]

    def serving(self, upstream: str) -> Instance:
        return next(i for i in self.instances if i.upstream == upstream)

    async def script_oracle(self, scenario: Scenario, call_sid: str) -> None:
        """Oracle ASR is per process: every instance learns what the caller will say (only tests need this)."""
        lines = [{"text": text, "confidence": confidence} for text, confidence in scenario.oracle_script()]
        async with httpx.AsyncClient(timeout=5) as http:
            for instance in self.instances:
                if instance.process.poll() is None:
                    answer = await http.post(f"{instance.base}/api/oracle/{call_sid}", json={"utterances": lines},
                                             headers=HEADERS)  # fmt: skip
                    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def tts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tts")


@pytest.fixture
def cluster_database(postgres_url: str) -> Iterator[str]:
    """The session's database, emptied of everything (the store's tables and the job queue's) before and after."""
    reset_postgres(postgres_url)
    store = Store(postgres_url)
    try:
        store.migrate()  # once, before the instances start together
    finally:
        store.close()
    yield postgres_url
    reset_postgres(postgres_url)


@asynccontextmanager
async def running_cluster(
    work: Path, database_url: str, tts_dir: Path, size: int = 3, workers: int = 0, **env: str
) -> AsyncIterator[Cluster]:
    """`size` instances behind nginx (the public URL, which Twilio signs) and `workers` job workers."""
    nginx_binary = require_nginx()
    public_port = free_port()
    env = {"HANDOFF_PUBLIC_URL": f"http://127.0.0.1:{public_port}", **env}
    async with TwilioFake.running(auth_token=AUTH) as fake:
        twilio = (fake.base_url, fake.account_sid)
        instances = [Instance(f"i{n}", work, database_url, twilio, tts_dir, **env) for n in range(size)]
        started = [Instance(f"w{n}", work, database_url, twilio, tts_dir, "worker", **env) for n in range(workers)]
        nginx: Nginx | None = None
        try:
            for instance in instances:
                instance.wait_up()
            nginx = Nginx(nginx_binary, work, [i.upstream for i in instances], public_port)
            yield Cluster(instances, nginx, fake, started)
        finally:
            if nginx is not None:
                nginx.stop()
            for instance in instances + started:
                instance.stop()
