"""Call control through Twilio's REST API: move a live call, end or cancel a leg, place a call, read queue load.

`TwilioRest` is a thin, blocking adapter around `twilio.rest.Client` (the server runs it in a worker thread).
Every failure comes out as one `TransferError` that says whether trying again makes sense, so the caller can
fall back to the `<Connect action>` URL instead of leaving the caller on a dead stream.

The base URL is a setting so tests can point the real twilio client at a local fake (`telephony.replay.twilio_fake`).
twilio-python builds each request URL from a per-domain host (api.twilio.com, taskrouter.twilio.com, ...), so
pointing one domain at a new host would leave the others on Twilio. Instead the HTTP client itself rewrites the
scheme and host of every outgoing URL (`BaseUrlHttpClient`), which covers all domains, paginated `next_page_url`s,
and edge/region host rewriting (`Client.get_hostname` runs before the HTTP client, and would mangle a loopback IP).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from telephony.twilio.errors import TransferError

__all__ = ["TWILIO_API_BASE_URL", "BaseUrlHttpClient", "QueueStats", "TwilioApiError", "TwilioRest"]

log = logging.getLogger(__name__)

TWILIO_API_BASE_URL = "https://api.twilio.com"
"""Twilio's own API host; with it (or any *.twilio.com host) each domain keeps its own Twilio host."""

DEFAULT_STATUS_EVENTS: tuple[str, ...] = ("initiated", "ringing", "answered", "completed")
"""Call-progress events a placed call reports, so a dialer learns when the agent answers, not only the end."""

_T = TypeVar("_T")


class TwilioApiError(TransferError):
    """A `TransferError` from a Twilio REST request, with Twilio's HTTP status and error code when it answered.

    `http_status` is None when Twilio was not reached (connection refused, timeout).
    """

    def __init__(
        self,
        message: str,
        *,
        call_sid: str | None = None,
        retryable: bool = False,
        http_status: int | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message, call_sid=call_sid, retryable=retryable)
        self.http_status = http_status
        self.code = code


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How busy one TaskRouter queue is right now: enough to decide between transfer, callback and voicemail."""

    available_workers: int
    waiting_tasks: int
    longest_wait_s: int


def _is_twilio_host(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "twilio.com" or host.endswith(".twilio.com")


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type information
    """A TwilioHttpClient that sends every request to one base URL, keeping each request's path and query.

    With base ``http://127.0.0.1:8123/prefix``, ``https://taskrouter.twilio.com/v1/Workspaces/WS1`` becomes
    ``http://127.0.0.1:8123/prefix/v1/Workspaces/WS1``.
    """

    def __init__(self, base_url: str, *, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base URL must be http(s)://host[:port][/path], got {base_url!r}")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path
        if parts.hostname in ("127.0.0.1", "localhost", "::1") and self.session is not None:
            # A loopback fake must never be reached through an HTTP(S)_PROXY from the environment.
            self.session.trust_env = False

    def rewrite(self, url: str) -> str:
        """`url` with its scheme and host replaced by the base URL's (and the base path prefixed)."""
        parts = urlsplit(url)
        return urlunsplit((self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransferError) and exc.retryable


class TwilioRest:
    """Blocking call control over Twilio's REST API; run it off the event loop (e.g. `asyncio.to_thread`).

    Only `redirect_call` and `cancel_leg` retry (a few attempts, exponential backoff) on retryable errors: both are
    safe to repeat. `create_call` never retries, since a retry after a lost response would ring a second phone.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str = TWILIO_API_BASE_URL,
        *,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.2,
    ) -> None:
        if _is_twilio_host(base_url):
            http_client: TwilioHttpClient = TwilioHttpClient(timeout=timeout_s)
        else:
            http_client = BaseUrlHttpClient(base_url, timeout=timeout_s)
        self._http = http_client
        self._client = Client(account_sid, auth_token, account_sid=account_sid, http_client=http_client)
        self._host = urlsplit(base_url).netloc
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._auth = (account_sid, auth_token)
        self._timeout_s = timeout_s

    def fetch_recording(self, recording_url: str) -> bytes:
        """Download a recording as WAV (Twilio serves 8 kHz PCM at `<RecordingUrl>.wav`, behind basic auth)."""
        url = recording_url if recording_url.endswith(".wav") else recording_url + ".wav"
        if isinstance(self._http, BaseUrlHttpClient):
            url = self._http.rewrite(url)
        try:
            response = httpx.get(url, auth=self._auth, timeout=self._timeout_s, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise TwilioApiError(f"fetching the recording failed: {type(exc).__name__}", retryable=True) from exc
        if response.status_code != 200:
            raise TwilioApiError(
                f"fetching the recording answered HTTP {response.status_code}",
                http_status=response.status_code,
                retryable=response.status_code >= 500,
            )
        return response.content

    def close(self) -> None:
        """Close pooled connections (a test fake's server would otherwise wait on idle keep-alives)."""
        if self._http.session is not None:
            self._http.session.close()

    def __enter__(self) -> TwilioRest:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- call control -------------------------------------------------------------------------------

    def redirect_call(self, call_sid: str, twiml: str) -> None:
        """Replace the live call's TwiML (this ends its media stream); retried while the failure is retryable."""

        def update() -> None:
            self._call("redirect", call_sid, lambda: self._client.calls(call_sid).update(twiml=twiml))

        self._retrying("redirect", call_sid, update)

    def end_call(self, call_sid: str, status: str = "completed") -> None:
        """Hang up a call: `completed` ends it even if answered, `canceled` only stops one still queued or ringing."""
        if status not in ("completed", "canceled"):
            raise ValueError(f"status must be 'completed' or 'canceled', got {status!r}")
        self._call("end", call_sid, lambda: self._client.calls(call_sid).update(status=status))

    def cancel_leg(self, call_sid: str, in_progress: bool) -> None:
        """Stop an agent leg whose caller hung up: cancel it while it rings, complete it once it is answered.

        Twilio ignores `canceled` for a call that is already in progress, so if the agent answered in the
        meantime (the answer raced our request) the leg is completed as well, rather than left on a whisper.
        """

        def update(status: str) -> Callable[[], str | None]:
            def attempt() -> str | None:
                call = self._call("cancel", call_sid, lambda: self._client.calls(call_sid).update(status=status))
                status_now = call.status
                return status_now if isinstance(status_now, str) else None

            return attempt

        if in_progress:
            self._retrying("cancel", call_sid, update("completed"))
            return
        now = self._retrying("cancel", call_sid, update("canceled"))
        if now == "in-progress":
            log.info("agent leg %s answered before it was canceled; completing it", call_sid)
            self._retrying("cancel", call_sid, update("completed"))

    def create_call(
        self,
        to: str,
        from_: str,
        url: str,
        *,
        machine_detection: str | None = None,
        status_callback: str | None = None,
        async_amd_callback: str | None = None,
        status_events: Sequence[str] = DEFAULT_STATUS_EVENTS,
        ring_timeout_s: int | None = None,
    ) -> str:
        """Place an outbound call that runs the TwiML at `url`; returns its Call SID.

        `machine_detection` is Twilio's `Enable` or `DetectMessageEnd`. With `async_amd_callback` detection runs in
        the background and its verdict (`AnsweredBy`) is posted there, so the callee is not kept in silence.
        """
        if machine_detection not in (None, "Enable", "DetectMessageEnd"):
            raise ValueError(f"machine_detection must be 'Enable' or 'DetectMessageEnd', got {machine_detection!r}")
        kwargs: dict[str, object] = {"to": to, "from_": from_, "url": url}
        if machine_detection is not None:
            kwargs["machine_detection"] = machine_detection
        if async_amd_callback is not None:
            kwargs["async_amd"] = "true"
            kwargs["async_amd_status_callback"] = async_amd_callback
            kwargs["async_amd_status_callback_method"] = "POST"
        if status_callback is not None:
            kwargs["status_callback"] = status_callback
            kwargs["status_callback_method"] = "POST"
            kwargs["status_callback_event"] = list(status_events)
        if ring_timeout_s is not None:
            kwargs["timeout"] = ring_timeout_s
        call = self._call("create", None, lambda: self._client.calls.create(**kwargs))
        if not call.sid:
            raise TwilioApiError("Twilio created a call but answered no Call SID", retryable=False)
        return str(call.sid)

    # -- availability -------------------------------------------------------------------------------

    def queue_statistics(self, workspace_sid: str, task_queue_sid: str) -> QueueStats:
        """Live load of a TaskRouter queue; tasks waiting are those pending or reserved (offered, not accepted)."""
        stats = self._call(
            "queue statistics",
            None,
            lambda: (
                self._client.taskrouter.v1.workspaces(workspace_sid)
                .task_queues(task_queue_sid)
                .real_time_statistics()
                .fetch()
            ),
        )
        by_status: Mapping[str, object] = stats.tasks_by_status or {}
        return QueueStats(
            available_workers=_as_int(stats.total_available_workers),
            waiting_tasks=_as_int(by_status.get("pending")) + _as_int(by_status.get("reserved")),
            longest_wait_s=_as_int(stats.longest_task_waiting_age),
        )

    # -- plumbing -----------------------------------------------------------------------------------

    def _retrying(self, op: str, call_sid: str, attempt: Callable[[], _T]) -> _T:
        def before_sleep(state: object) -> None:
            log.info("twilio %s of %s failed (retryable); trying again", op, call_sid)

        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff_s, min=self._backoff_s, max=2.0),
            retry=retry_if_exception(_is_retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)

    def _call(self, op: str, call_sid: str | None, request: Callable[[], _T]) -> _T:
        """Run one twilio-client request, turning every failure into a TwilioApiError and logging it (no secrets)."""
        where = f"Twilio {op} of {call_sid or '-'} failed"
        try:
            return request()
        except (TwilioRestException, TwilioServiceException) as exc:
            status = int(exc.status)
            code = int(exc.code) if exc.code is not None else None
            detail = exc.msg if isinstance(exc, TwilioRestException) else exc.title
            raise self._logged(
                TwilioApiError(
                    f"{where}: HTTP {status}, code {code}: {detail}",
                    call_sid=call_sid,
                    retryable=status >= 500 or status == 429,
                    http_status=status,
                    code=code,
                )
            ) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            message = f"{where}: cannot reach {self._host} ({type(exc).__name__})"
            raise self._logged(TwilioApiError(message, call_sid=call_sid, retryable=True)) from exc
        except (requests.RequestException, json.JSONDecodeError) as exc:
            message = f"{where}: {type(exc).__name__}"
            raise self._logged(TwilioApiError(message, call_sid=call_sid, retryable=False)) from exc

    @staticmethod
    def _logged(error: TwilioApiError) -> TwilioApiError:
        # The message carries the operation, Call SID, HTTP status and Twilio code; never credentials or TwiML.
        log.warning("%s", error)
        return error


def _as_int(value: object) -> int:
    """TaskRouter reports some counts as strings ({"pending": "1"}); anything unreadable counts as 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return 0
