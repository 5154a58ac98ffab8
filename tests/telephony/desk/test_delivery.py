"""Handoff delivery against a real help-desk stand-in: a FastAPI app on a loopback uvicorn socket that records
every POST and answers from a script (500s, 429 with Retry-After, 400, a hang), plus the signature scheme."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI, Request, Response
from hypothesis import given
from hypothesis import strategies as st

from telephony.desk.delivery import (
    DELIVERED,
    FAILED,
    PENDING,
    HandoffDeliverer,
    MemoryDeliveryLog,
    sign,
    verify,
)
from telephony.replay.in_process import serve_in_process

SECRET = "whsec-test-4f1c9a"
Make = Callable[..., HandoffDeliverer]
LogCapture = pytest.LogCaptureFixture
PACKAGE: dict[str, object] = {"call_sid": "CA" + "1" * 32, "reason": "caller_asked", "summary": "Wants a refund."}


@dataclass(frozen=True)
class Reply:
    """One scripted answer; `hang` holds the request open until the test ends."""

    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """A help desk stand-in: records each POST, answers from `script`, then 200 once the script runs out."""

    def __init__(self) -> None:
        self.base = ""
        self.seen: list[Seen] = []
        self.script: list[Reply] = []
        self.gate: asyncio.Barrier | None = None  # when set, requests wait here for each other
        self.release = asyncio.Event()

    def url(self, path: str = "hook") -> str:
        return f"{self.base}/{path}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def hook(path: str, request: Request) -> Response:
            self.seen.append(Seen(path, dict(request.headers), await request.body(), time.monotonic()))
            reply = self.script.pop(0) if self.script else Reply()
            if reply.hang:
                await self.release.wait()
            if self.gate is not None:
                await asyncio.wait_for(self.gate.wait(), 1.5)
            return Response(reply.body, reply.status, headers=reply.headers)

        return app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    async with serve_in_process(rx.app()) as base:
        rx.base = base
        yield rx
        rx.release.set()  # let hung handlers finish, or uvicorn's shutdown would wait for them


@pytest.fixture
async def make_deliverer() -> AsyncIterator[Make]:
    made: list[HandoffDeliverer] = []

    def make(urls: list[str], log: MemoryDeliveryLog | None = None, **options: float) -> HandoffDeliverer:
        settings: dict[str, float] = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 1.0, **options}
        deliverer = HandoffDeliverer(urls, SECRET, log or MemoryDeliveryLog(), **settings)  # type: ignore[arg-type]
        made.append(deliverer)
        return deliverer

    yield make
    for deliverer in made:
        await deliverer.aclose()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but never listening, so every connection is refused and nothing else can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def signed_ok(seen: Seen) -> bool:
    h = seen.headers
    return verify(SECRET, h["x-handoff-timestamp"], seen.body, h["x-handoff-signature"])


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_a_delivery_is_signed_and_carries_its_id(receiver: Receiver, make_deliverer: Make) -> None:
    deliverer = make_deliverer([receiver.url()])
    [delivery_id] = await deliverer.deliver("h-1", PACKAGE)

    [seen] = receiver.seen
    assert seen.headers["x-handoff-delivery"] == delivery_id
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"].startswith("handoff/")
    assert seen.headers["x-handoff-signature"].startswith("sha256=")
    assert signed_ok(seen)
    assert json.loads(seen.body) == PACKAGE
    record = deliverer.log.get_delivery(delivery_id)
    assert record is not None
    assert (record["status"], record["attempts"], record["last_error"]) == (DELIVERED, 1, None)
    assert (record["handoff_id"], record["url"], record["payload"]) == ("h-1", receiver.url(), PACKAGE)


async def test_the_delivery_is_recorded_pending_before_it_is_sent(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(hang=True)]
    deliverer = make_deliverer([receiver.url()], timeout_s=5.0)
    task = asyncio.create_task(deliverer.deliver("h-1", PACKAGE))
    await until(lambda: bool(receiver.seen))

    [record] = deliverer.log.deliveries()
    assert (record["status"], record["attempts"]) == (PENDING, 0)
    receiver.release.set()
    await task
    assert deliverer.log.deliveries(DELIVERED)[0]["attempts"] == 1


async def test_500s_are_retried_until_delivered(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(500, "down"), Reply(503, "still down")]
    deliverer = make_deliverer([receiver.url()])
    [delivery_id] = await deliverer.deliver("h-1", PACKAGE)

    assert len(receiver.seen) == 3
    assert {s.headers["x-handoff-delivery"] for s in receiver.seen} == {delivery_id}
    assert all(signed_ok(s) for s in receiver.seen)
    record = deliverer.log.get_delivery(delivery_id)
    assert record is not None
    assert (record["status"], record["attempts"], record["last_error"]) == (DELIVERED, 3, None)


async def test_a_timeout_is_retried(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(hang=True)]
    deliverer = make_deliverer([receiver.url()], timeout_s=0.2)
    [delivery_id] = await deliverer.deliver("h-1", PACKAGE)

    record = deliverer.log.get_delivery(delivery_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == (DELIVERED, 2)


async def test_429_retry_after_is_honoured(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(429, "slow down", {"Retry-After": "1"})]
    deliverer = make_deliverer([receiver.url()], backoff_max_s=5.0)
    [delivery_id] = await deliverer.deliver("h-1", PACKAGE)

    first, second = receiver.seen
    assert second.at - first.at >= 0.95  # the backoff alone would have waited about 0.02 s
    record = deliverer.log.get_delivery(delivery_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == (DELIVERED, 2)


async def test_a_long_retry_after_is_capped_at_the_backoff_maximum(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(429, "slow down", {"Retry-After": "3600"})]
    deliverer = make_deliverer([receiver.url()], backoff_max_s=0.2)
    await deliverer.deliver("h-1", PACKAGE)

    first, second = receiver.seen
    assert 0.15 <= second.at - first.at < 2


async def test_a_400_is_not_retried_and_is_kept_with_its_error(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(400, "bad field: summary " + "x" * 500)]
    deliverer = make_deliverer([receiver.url()])
    [delivery_id] = await deliverer.deliver("h-1", PACKAGE)

    assert len(receiver.seen) == 1
    [record] = deliverer.log.deliveries(FAILED)
    assert (record["delivery_id"], record["attempts"]) == (delivery_id, 1)
    assert record["last_error"] == "HTTP 400: bad field: summary " + "x" * (200 - len("bad field: summary "))
    assert record["payload"] == PACKAGE


async def test_connection_refused_fails_after_max_attempts_and_is_kept(closed_port: int, make_deliverer: Make) -> None:
    deliverer = make_deliverer([f"http://127.0.0.1:{closed_port}/hook"], max_attempts=3)
    [delivery_id] = await deliverer.deliver("h-1", PACKAGE)

    [record] = deliverer.log.deliveries(FAILED)
    assert (record["delivery_id"], record["attempts"], record["last_error"]) == (delivery_id, 3, "ConnectError")


async def test_resend_after_recovery_keeps_the_delivery_id(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(500, "down")] * 3
    deliverer = make_deliverer([receiver.url()], max_attempts=3)
    [delivery_id] = await deliverer.deliver("h-1", PACKAGE)
    record = deliverer.log.get_delivery(delivery_id)
    assert record is not None
    assert (record["status"], record["attempts"], record["last_error"]) == (FAILED, 3, "HTTP 500: down")

    assert await deliverer.resend(delivery_id)
    record = deliverer.log.get_delivery(delivery_id)
    assert record is not None
    assert (record["status"], record["attempts"], record["last_error"]) == (DELIVERED, 4, None)
    assert [s.headers["x-handoff-delivery"] for s in receiver.seen] == [delivery_id] * 4
    assert signed_ok(receiver.seen[-1])
    assert receiver.seen[-1].body == receiver.seen[0].body


async def test_resend_failed_sends_every_failure_again(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(400, "no"), Reply(400, "no")]
    deliverer = make_deliverer([receiver.url("a"), receiver.url("b")])
    await deliverer.deliver("h-1", PACKAGE)
    assert len(deliverer.log.deliveries(FAILED)) == 2

    assert await deliverer.resend_failed() == 2
    assert len(deliverer.log.deliveries(DELIVERED)) == 2
    assert await deliverer.resend_failed() == 0
    assert not await deliverer.resend("no-such-delivery")


async def test_two_urls_are_delivered_concurrently(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.gate = asyncio.Barrier(2)  # each answer waits until both requests have arrived
    deliverer = make_deliverer([receiver.url("desk"), receiver.url("crm")], max_attempts=1)
    ids = await deliverer.deliver("h-1", PACKAGE)

    assert sorted(s.path for s in receiver.seen) == ["crm", "desk"]
    assert len(set(ids)) == 2
    assert [r["status"] for r in deliverer.log.deliveries()] == [DELIVERED, DELIVERED]


async def test_background_deliveries_are_drained(receiver: Receiver, make_deliverer: Make) -> None:
    receiver.script = [Reply(500, "down")]
    deliverer = make_deliverer([receiver.url()])
    tasks = [deliverer.deliver_in_background(f"h-{n}", PACKAGE) for n in range(3)]
    await deliverer.drain()

    assert all(task.done() for task in tasks)
    assert len(deliverer.log.deliveries(DELIVERED)) == 3
    with pytest.raises(TypeError):
        deliverer.deliver_in_background("h-bad", {"when": object()})


async def test_secrets_never_reach_the_logs(closed_port: int, make_deliverer: Make, caplog: LogCapture) -> None:
    caplog.set_level(logging.DEBUG)
    deliverer = make_deliverer([f"http://user:pw-9z@127.0.0.1:{closed_port}/hooks/tok-5e3b"], max_attempts=2)
    await deliverer.deliver("h-1", PACKAGE)

    assert "delivery" in caplog.text
    for secret in (SECRET, "pw-9z", "tok-5e3b"):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("secret", "body", "timestamp_shift", "signature_of", "expected"),
    [
        pytest.param(SECRET, b'{"a":1}', 0, None, True, id="genuine"),
        pytest.param(SECRET, b'{"a":2}', 0, None, False, id="tampered-body"),
        pytest.param("another-secret", b'{"a":1}', 0, None, False, id="wrong-secret"),
        pytest.param(SECRET, b'{"a":1}', -301, None, False, id="old-timestamp"),
        pytest.param(SECRET, b'{"a":1}', 301, None, False, id="future-timestamp"),
        pytest.param(SECRET, b'{"a":1}', 0, "sha256=" + "0" * 64, False, id="wrong-signature"),
        pytest.param(SECRET, b'{"a":1}', 0, "sha256=é", False, id="non-ascii-signature"),
    ],
)
def test_verify(secret: str, body: bytes, timestamp_shift: int, signature_of: str | None, expected: bool) -> None:
    now = 1_700_000_000.0
    timestamp = str(int(now) + timestamp_shift)
    signature = signature_of or "sha256=" + sign(SECRET, timestamp, b'{"a":1}')
    assert verify(secret, timestamp, body, signature, now=now) is expected


def test_verify_rejects_a_timestamp_that_is_not_unix_seconds() -> None:
    assert not verify(SECRET, "2023-11-14", b"{}", sign(SECRET, "2023-11-14", b"{}"))


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    # The scheme a receiver implements, spelled out with nothing but the standard library.
    expected = hmac.new(SECRET.encode(), b"1700000000." + b'{"a":1}', hashlib.sha256).hexdigest()
    assert sign(SECRET, "1700000000", b'{"a":1}') == expected
    assert verify(SECRET, "1700000000", b'{"a":1}', expected, now=1_700_000_000)  # bare hex is accepted too


@given(body=st.binary(max_size=512), flip=st.integers(min_value=0, max_value=511))
def test_any_body_verifies_and_any_changed_byte_does_not(body: bytes, flip: int) -> None:
    timestamp = str(int(time.time()))
    signature = "sha256=" + sign(SECRET, timestamp, body)
    assert verify(SECRET, timestamp, body, signature)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not verify(SECRET, timestamp, changed, signature)


def test_the_memory_log_hands_out_copies() -> None:
    log = MemoryDeliveryLog()
    log.add_delivery("d1", "h-1", "http://desk.example/hook", {"nested": {"n": 1}})
    record = log.get_delivery("d1")
    assert record is not None
    record["payload"]["nested"] = "changed"
    assert log.get_delivery("d1") == {
        "delivery_id": "d1", "handoff_id": "h-1", "url": "http://desk.example/hook", "status": PENDING,
        "attempts": 0, "last_error": None, "payload": {"nested": {"n": 1}},
    }  # fmt: skip
    assert log.get_delivery("d2") is None


@pytest.mark.parametrize(
    ("urls", "secret", "max_attempts"),
    [(["ftp://desk.example/x"], SECRET, 5), (["http://desk.example/x"], "", 5), (["http://desk.example/x"], SECRET, 0)],
    ids=["not-http", "no-secret", "no-attempts"],
)
async def test_bad_configuration_is_refused(urls: list[str], secret: str, max_attempts: int) -> None:
    with pytest.raises(ValueError):
        HandoffDeliverer(urls, secret, MemoryDeliveryLog(), max_attempts=max_attempts)
