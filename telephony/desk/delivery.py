"""Hands each handoff package to a help desk or CRM: one signed JSON POST per configured webhook URL.

A delivery is written to the `DeliveryLog` as "pending" before anything is sent, updated after each failed
attempt, and ends "delivered" or "failed". A failed delivery stays in the log and can be sent again with
`resend()` or `resend_failed()`, so a help desk that was down never loses a handoff.

What a receiver gets::

    POST <url>
    Content-Type: application/json
    User-Agent: handoff/<version>
    X-Handoff-Delivery: <32 hex chars>   the same on every retry and re-send: use it to drop duplicates
    X-Handoff-Timestamp: <unix seconds>  when this attempt was signed
    X-Handoff-Signature: sha256=<hex>    HMAC-SHA256(secret, timestamp + "." + raw body bytes)

To check a request, use the raw body bytes as received (not JSON re-serialised after parsing), recompute the
HMAC, compare in constant time, and reject timestamps more than a few minutes from your clock: `verify()` does
exactly this. The delivery id is not signed, so a receiver that must resist replays inside the time window
should also remember the signatures it has seen for that long.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol, TypedDict
from urllib.parse import urlsplit

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt, wait_exponential, wait_random
from tenacity.wait import wait_base

from telephony.desk.outbox import Outbox

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
SHUTDOWN_GRACE_S = 2.0  # what a shutdown waits for deliveries in flight
SIGNATURE_PREFIX = "sha256="
try:
    USER_AGENT = f"handoff/{version('handoff')}"
except PackageNotFoundError:  # running from a source tree that was never installed
    USER_AGENT = "handoff/0+unknown"
_RETRYABLE_STATUS = frozenset({408, 429})
_RESEND_CONCURRENCY = 8  # a long backlog of failures must not open hundreds of connections at once


class DeliveryRecord(TypedDict):
    """One delivery as the log keeps it; `attempts` counts every POST, across re-sends."""

    delivery_id: str
    handoff_id: str
    url: str
    status: str
    attempts: int
    last_error: str | None
    payload: dict[str, object]


class DeliveryLog(Protocol):
    """The persistence the deliverer needs. It calls these from worker threads, so they must be thread-safe."""

    def add_delivery(self, delivery_id: str, handoff_id: str, url: str, payload: Mapping[str, object]) -> None: ...
    def update_delivery(self, delivery_id: str, status: str, attempts: int, last_error: str | None = None) -> None: ...
    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None: ...
    def deliveries(self, status: str | None = None) -> Sequence[DeliveryRecord]: ...


class MemoryDeliveryLog:
    """The log in a dict, for tests and for running without a database (it is lost on restart)."""

    def __init__(self) -> None:
        self._records: dict[str, DeliveryRecord] = {}
        self._lock = threading.Lock()

    def add_delivery(self, delivery_id: str, handoff_id: str, url: str, payload: Mapping[str, object]) -> None:
        record = DeliveryRecord(delivery_id=delivery_id, handoff_id=handoff_id, url=url, status=PENDING,
                                attempts=0, last_error=None, payload=copy.deepcopy(dict(payload)))  # fmt: skip
        with self._lock:
            self._records[delivery_id] = record

    def update_delivery(self, delivery_id: str, status: str, attempts: int, last_error: str | None = None) -> None:
        with self._lock:
            record = self._records[delivery_id]
            record["status"], record["attempts"], record["last_error"] = status, attempts, last_error

    def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        with self._lock:
            record = self._records.get(delivery_id)
            return copy.deepcopy(record) if record is not None else None

    def deliveries(self, status: str | None = None) -> list[DeliveryRecord]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._records.values() if status is None or r["status"] == status]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp + "." + body`; the timestamp is signed so an old request cannot be reused."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """True when `signature` ("sha256=<hex>" or bare hex) signs `body` at a timestamp within `tolerance_s` of now."""
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        return False
    given = signature.removeprefix(SIGNATURE_PREFIX)
    return given.isascii() and hmac.compare_digest(sign(secret, timestamp, body).encode(), given.encode())


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What one POST came to; `retryable` and `retry_after` steer the retry loop."""

    delivered: bool
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None


class HandoffDeliverer:
    """POSTs handoff packages to every configured URL, retrying with backoff; failures stay in the log."""

    def __init__(
        self,
        urls: list[str],
        secret: str,
        log: DeliveryLog,
        *,
        max_attempts: int = 5,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
        outbox: Outbox | None = None,
        send_now: bool = True,
    ) -> None:
        if not secret:
            raise ValueError("a signing secret is required: receivers could not tell our requests from forgeries")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        for url in urls:
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ValueError(f"not an http(s) webhook URL: {_origin(url)!r}")
        self.urls = list(urls)
        self.log = log
        self.outbox = outbox
        self.send_now = send_now  # False: `deliver` records each delivery with its job; a worker sends it
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self._secret = secret
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        self._sending: set[str] = set()
        self._background: set[asyncio.Task[list[str]]] = set()

    async def deliver(self, handoff_id: str, payload: Mapping[str, object]) -> list[str]:
        """Send `payload` to every URL at once; returns the delivery ids. Delivery failures are logged, not raised.

        A payload that is not JSON-serialisable raises `TypeError` before anything is recorded; so does a
        failing `DeliveryLog`, since a delivery that cannot be recorded could be lost.
        """
        body = _encode(payload)
        snapshot = orjson.loads(body)  # what is stored is exactly what was sent, whatever the caller does next
        targets = [(uuid.uuid4().hex, url) for url in self.urls]
        with self._claimed([delivery_id for delivery_id, _ in targets]):
            for delivery_id, url in targets:
                await self._log(delivery_id, self.log.add_delivery, delivery_id, handoff_id, url, snapshot)
            if not self.send_now:
                return [delivery_id for delivery_id, _ in targets]
            sends = (self._send(delivery_id, url, body, 0) for delivery_id, url in targets)
            results = await asyncio.gather(*sends, return_exceptions=True)  # one failing log must not orphan the rest
        if errors := [result for result in results if isinstance(result, BaseException)]:
            raise errors[0]
        return [delivery_id for delivery_id, _ in targets]

    async def resend(self, delivery_id: str) -> bool:
        """Send a stored delivery again with a fresh signature; True once delivered.

        False when the id is unknown, is being sent right now, or fails again (it is then kept as "failed").
        Any status may be re-sent, so "pending" records left by a crash can be recovered by id.
        """
        if delivery_id in self._sending:
            return False
        with self._claimed([delivery_id]):
            record = await asyncio.to_thread(self.log.get_delivery, delivery_id)
            if record is None:
                return False
            return await self._send(delivery_id, record["url"], _encode(record["payload"]), record["attempts"])

    async def resend_failed(self, include_pending: bool = False) -> int:
        """Re-send every "failed" delivery (a few at a time), and with `include_pending` the "pending" ones a
        previous run left unfinished (call at start-up only); returns how many are now delivered."""
        failed = list(await asyncio.to_thread(self.log.deliveries, FAILED))
        if include_pending:
            failed += await asyncio.to_thread(self.log.deliveries, PENDING)
        limit = asyncio.Semaphore(_RESEND_CONCURRENCY)

        async def one(delivery_id: str) -> bool:
            async with limit:
                return await self.resend(delivery_id)

        return sum(await asyncio.gather(*(one(record["delivery_id"]) for record in failed)))

    def deliver_in_background(self, handoff_id: str, payload: Mapping[str, object]) -> asyncio.Task[list[str]]:
        """Schedule `deliver()` without waiting, keeping the task referenced until done; `drain()` awaits them."""
        _encode(payload)  # an unsendable payload is the caller's bug: raise it here, not inside a task
        task = asyncio.create_task(self.deliver(handoff_id, payload), name=f"handoff-delivery-{handoff_id}")
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    async def drain(self) -> None:
        """Wait for every background delivery, including ones scheduled while waiting; call at shutdown."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def aclose(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Give background deliveries `grace_s` to finish, then stop them: a help desk that hangs must not hold
        up a shutdown. What was stopped stays "pending" in the log and is sent again at the next start."""
        if self._background:
            _done, unfinished = await asyncio.wait(set(self._background), timeout=grace_s)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning(
                    "%d help-desk deliveries stopped at shutdown; they are re-sent at the next start", len(unfinished)
                )
                await asyncio.gather(*unfinished, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()

    @contextmanager
    def _claimed(self, delivery_ids: list[str]) -> Iterator[None]:
        """Marks deliveries as being sent by this deliverer, so a re-send never races a send of the same one."""
        self._sending.update(delivery_ids)
        try:
            yield
        finally:
            self._sending.difference_update(delivery_ids)

    def _background_done(self, task: asyncio.Task[list[str]]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background delivery %s could not be recorded: %s", task.get_name(), type(exc).__name__)

    async def _send(self, delivery_id: str, url: str, body: bytes, prior_attempts: int) -> bool:
        """Run the retry loop for one claimed delivery and record how it ended; True when delivered."""
        attempts = prior_attempts

        async def attempt_once() -> _Attempt:
            nonlocal attempts
            attempts += 1
            outcome = await self._post(delivery_id, url, body)
            if outcome.retryable:  # record progress, so a crash mid-backoff leaves a true count behind
                await self._log(delivery_id, self.log.update_delivery, delivery_id, PENDING, attempts, outcome.error)
            return outcome

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_result(lambda outcome: outcome.retryable),
            retry_error_callback=_last_result,
        )
        outcome: _Attempt = await retrying(attempt_once)
        status = DELIVERED if outcome.delivered else FAILED
        await self._log(delivery_id, self.log.update_delivery, delivery_id, status, attempts, outcome.error)
        if outcome.delivered:
            log.info("delivery %s to %s delivered after %d attempt(s)", delivery_id, _origin(url), attempts)
        else:
            log.warning("delivery %s to %s failed after %d attempt(s): %s; kept for re-sending",
                        delivery_id, _origin(url), attempts, outcome.error)  # fmt: skip
        return outcome.delivered

    async def _log(self, delivery_id: str, write: Callable[..., object], *args: object) -> None:
        """Record a delivery's progress; with an outbox, a store that is locked or down never holds up sending
        (the write is retried until stored)."""
        if self.outbox is None:
            await asyncio.to_thread(write, *args)
            return
        operation = getattr(write, "__name__", "write")
        await self.outbox.put(f"delivery:{delivery_id}:{operation}", lambda: write(*args), operation=operation)

    async def _post(self, delivery_id: str, url: str, body: bytes) -> _Attempt:
        """One signed POST, reduced to an `_Attempt`; nothing raised here escapes as a delivery failure."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Handoff-Delivery": delivery_id,
            "X-Handoff-Timestamp": timestamp,
            "X-Handoff-Signature": SIGNATURE_PREFIX + sign(self._secret, timestamp, body),
        }
        try:
            response = await self._client.post(url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.TransportError as exc:  # refused, reset, DNS, every kind of timeout
            log.info("delivery %s to %s: %s", delivery_id, _origin(url), type(exc).__name__)
            return _Attempt(False, type(exc).__name__, retryable=True)
        except Exception as exc:  # anything else is still recorded, never lost with the task
            log.warning("delivery %s to %s: unexpected %s", delivery_id, _origin(url), type(exc).__name__)
            return _Attempt(False, type(exc).__name__)
        status = response.status_code
        if 200 <= status < 300:
            return _Attempt(True)
        error = f"HTTP {status}: {response.text[:200]}"
        log.info("delivery %s to %s: HTTP %d", delivery_id, _origin(url), status)
        if status >= 500 or status in _RETRYABLE_STATUS:
            return _Attempt(False, error, retryable=True, retry_after=_retry_after(response.headers.get("Retry-After")))
        return _Attempt(False, error)  # other 4xx (and 3xx) will not change by asking again

    def _wait(self, state: RetryCallState) -> float:
        """The receiver's Retry-After when it gave one (capped at `backoff_max_s`), else exponential jittered."""
        outcome = state.outcome
        result = outcome.result() if outcome is not None and not outcome.failed else None
        if isinstance(result, _Attempt) and result.retry_after is not None:
            return min(result.retry_after, self.backoff_max_s)
        return min(self._backoff()(state), self.backoff_max_s)

    def _backoff(self) -> wait_base:
        """Exponential plus up to one initial step of jitter, so handoffs failing together do not retry in step.

        Built from the current settings at each wait, so a tuned `backoff_initial_s` takes effect at once.
        Two waits added rather than wait_exponential_jitter, whose parameters changed between tenacity releases.
        """
        step = self.backoff_initial_s
        return wait_exponential(multiplier=step, max=self.backoff_max_s) + wait_random(0, step)


def _last_result(state: RetryCallState) -> _Attempt:
    """When attempts run out, return the last attempt's outcome instead of raising tenacity's RetryError."""
    if state.outcome is None:  # tenacity calls this only after an attempt; never without one
        return _Attempt(False, "no attempt was made", retryable=False)
    result: _Attempt = state.outcome.result()
    return result


def _encode(payload: Mapping[str, object]) -> bytes:
    return orjson.dumps(payload if isinstance(payload, dict) else dict(payload))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; None when absent or an HTTP date (our own backoff is used then)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _origin(url: str) -> str:
    """scheme://host:port only: webhook paths and queries often embed a token, which must not reach the logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # credentials in the URL are a secret too
    return f"{parts.scheme}://{host}"
