"""TwilioRest against the Twilio fake: real twilio client, real HTTP on loopback, no mocks."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from telephony.replay.twilio_fake import CallUpdate, TwilioFake
from telephony.twilio.errors import TransferError
from telephony.twilio.rest import BaseUrlHttpClient, QueueStats, TwilioApiError, TwilioRest

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Number>+15005550006</Number></Dial></Response>'
WORKSPACE = "WS" + "a" * 32
QUEUE = "WQ" + "b" * 32


@pytest.fixture
async def fake() -> AsyncIterator[TwilioFake]:
    async with TwilioFake.running() as fake:
        yield fake


@pytest.fixture
def rest(fake: TwilioFake) -> Iterator[TwilioRest]:
    with TwilioRest(fake.account_sid, fake.auth_token, fake.base_url) as rest:
        yield rest


def calls_path(fake: TwilioFake, sid: str | None = None) -> str:
    base = f"/2010-04-01/Accounts/{fake.account_sid}/Calls"
    return f"{base}/{sid}.json" if sid else f"{base}.json"


async def test_redirect_call_posts_twiml_with_basic_auth_and_the_fake_announces_it(
    fake: TwilioFake, rest: TwilioRest
) -> None:
    sid = fake.add_call()

    await asyncio.to_thread(rest.redirect_call, sid, TWIML)

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", calls_path(fake, sid))
    assert request.form == {"Twiml": TWIML}
    assert request.authorized
    update = await asyncio.wait_for(fake.updates.get(), 1)
    assert update.redirected and update.call_sid == sid and update.twiml == TWIML
    assert update.call_status == "in-progress"


async def test_redirect_call_retries_a_500_once_and_succeeds(fake: TwilioFake, rest: TwilioRest) -> None:
    sid = fake.add_call()
    fake.fail_next(sid, status=500)

    await asyncio.to_thread(rest.redirect_call, sid, TWIML)

    assert len(fake.requests_to(sid)) == 2
    assert fake.updates.qsize() == 1


async def test_redirect_call_gives_up_after_three_500s_with_a_retryable_error(
    fake: TwilioFake, rest: TwilioRest
) -> None:
    sid = fake.add_call()
    fake.fail_next(sid, status=500, times=3)

    with pytest.raises(TransferError) as caught:
        await asyncio.to_thread(rest.redirect_call, sid, TWIML)

    error = caught.value
    assert error.retryable and error.call_sid == sid
    assert isinstance(error, TwilioApiError) and (error.http_status, error.code) == (500, 20500)
    assert len(fake.requests_to(sid)) == 3
    assert fake.updates.empty()


async def test_redirect_of_an_unknown_call_is_a_404_that_is_not_retried(fake: TwilioFake, rest: TwilioRest) -> None:
    sid = "CA" + "9" * 32

    with pytest.raises(TransferError) as caught:
        await asyncio.to_thread(rest.redirect_call, sid, TWIML)

    assert not caught.value.retryable
    assert isinstance(caught.value, TwilioApiError) and caught.value.code == 20404
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("status", "retryable", "attempts"),
    [(500, True, 3), (503, True, 3), (429, True, 3), (400, False, 1), (403, False, 1), (404, False, 1)],
)
async def test_which_statuses_are_retried(fake: TwilioFake, status: int, retryable: bool, attempts: int) -> None:
    sid = fake.add_call()
    fake.fail_next(sid, status=status, times=5)

    with (
        TwilioRest(fake.account_sid, fake.auth_token, fake.base_url, backoff_s=0.01) as rest,
        pytest.raises(TransferError) as caught,
    ):
        await asyncio.to_thread(rest.redirect_call, sid, TWIML)

    assert caught.value.retryable is retryable
    assert len(fake.requests) == attempts


async def test_cancel_leg_cancels_a_ringing_agent_leg(fake: TwilioFake, rest: TwilioRest) -> None:
    agent = fake.add_call(status="ringing", direction="outbound-dial")

    await asyncio.to_thread(rest.cancel_leg, agent, False)

    assert [r.form for r in fake.requests] == [{"Status": "canceled"}]
    assert fake.calls[agent]["status"] == "canceled"


async def test_cancel_leg_completes_an_answered_agent_leg(fake: TwilioFake, rest: TwilioRest) -> None:
    agent = fake.add_call(status="in-progress", direction="outbound-dial")

    await asyncio.to_thread(rest.cancel_leg, agent, True)

    assert [r.form for r in fake.requests] == [{"Status": "completed"}]
    assert fake.calls[agent]["status"] == "completed"


async def test_cancel_leg_completes_a_leg_answered_while_it_was_being_canceled(
    fake: TwilioFake, rest: TwilioRest
) -> None:
    # The server still thinks the agent's phone rings, but the agent has just picked up.
    agent = fake.add_call(status="in-progress", direction="outbound-dial")

    await asyncio.to_thread(rest.cancel_leg, agent, False)

    assert [r.form for r in fake.requests] == [{"Status": "canceled"}, {"Status": "completed"}]
    assert fake.calls[agent]["status"] == "completed"


async def test_cancel_leg_retries_a_server_error(fake: TwilioFake, rest: TwilioRest) -> None:
    agent = fake.add_call(status="ringing")
    fake.fail_next(agent, status=502)

    await asyncio.to_thread(rest.cancel_leg, agent, False)

    assert len(fake.requests) == 2 and fake.calls[agent]["status"] == "canceled"


async def test_end_call_completes_the_call_without_retrying(fake: TwilioFake, rest: TwilioRest) -> None:
    sid = fake.add_call()

    await asyncio.to_thread(rest.end_call, sid)
    assert fake.requests[-1].form == {"Status": "completed"}
    assert fake.calls[sid]["status"] == "completed"

    fake.fail_next(sid, status=500)
    with pytest.raises(TransferError):
        await asyncio.to_thread(rest.end_call, sid)
    assert len(fake.requests) == 2


async def test_create_call_passes_machine_detection_and_returns_the_new_sid(fake: TwilioFake, rest: TwilioRest) -> None:
    sid = await asyncio.to_thread(
        rest.create_call,
        "+15551230000",
        "+15005550006",
        "https://bot.example.com/twilio/callback/caller",
        machine_detection="DetectMessageEnd",
        status_callback="https://bot.example.com/twilio/callback/status",
        async_amd_callback="https://bot.example.com/twilio/callback/amd",
    )

    assert sid in fake.calls and sid.startswith("CA") and len(sid) == 34
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", calls_path(fake))
    assert request.form["To"] == "+15551230000" and request.form["From"] == "+15005550006"
    assert request.form["Url"] == "https://bot.example.com/twilio/callback/caller"
    assert request.form["MachineDetection"] == "DetectMessageEnd"
    assert request.form["AsyncAmd"] == "true"
    assert request.form["AsyncAmdStatusCallback"] == "https://bot.example.com/twilio/callback/amd"
    assert request.form["StatusCallback"] == "https://bot.example.com/twilio/callback/status"
    events = [value for key, value in request.form_items if key == "StatusCallbackEvent"]
    assert events == ["initiated", "ringing", "answered", "completed"]


async def test_create_call_without_options_sends_only_what_it_needs(fake: TwilioFake, rest: TwilioRest) -> None:
    await asyncio.to_thread(rest.create_call, "client:agent1", "+15005550006", "https://bot.example.com/agent")

    assert fake.requests[0].form == {
        "To": "client:agent1",
        "From": "+15005550006",
        "Url": "https://bot.example.com/agent",
    }


async def test_create_call_is_not_retried(fake: TwilioFake, rest: TwilioRest) -> None:
    fake.fail_next("/Calls.json", status=500)

    with pytest.raises(TransferError) as caught:
        await asyncio.to_thread(rest.create_call, "+15551230000", "+15005550006", "https://bot.example.com/x")

    assert caught.value.retryable and caught.value.call_sid is None
    assert len(fake.requests) == 1 and not fake.calls


async def test_queue_statistics_parses_the_fakes_numbers_through_the_taskrouter_domain(
    fake: TwilioFake, rest: TwilioRest
) -> None:
    fake.set_queue_stats(WORKSPACE, QUEUE, available_workers=2, pending=3, reserved=1, assigned=4, longest_wait_s=95)

    stats = await asyncio.to_thread(rest.queue_statistics, WORKSPACE, QUEUE)

    assert stats == QueueStats(available_workers=2, waiting_tasks=4, longest_wait_s=95)
    assert fake.requests[0].path == f"/v1/Workspaces/{WORKSPACE}/TaskQueues/{QUEUE}/RealTimeStatistics"


async def test_queue_statistics_of_an_unknown_queue_is_a_transfer_error(fake: TwilioFake, rest: TwilioRest) -> None:
    with pytest.raises(TransferError) as caught:
        await asyncio.to_thread(rest.queue_statistics, WORKSPACE, QUEUE)
    assert not caught.value.retryable


async def test_wrong_credentials_are_a_401_transfer_error_and_no_secret_is_logged(
    fake: TwilioFake, caplog: pytest.LogCaptureFixture
) -> None:
    sid = fake.add_call()
    caplog.set_level(logging.DEBUG)

    with TwilioRest(fake.account_sid, "not-the-token", fake.base_url) as rest, pytest.raises(TransferError) as caught:
        await asyncio.to_thread(rest.redirect_call, sid, TWIML)

    assert not caught.value.retryable
    assert isinstance(caught.value, TwilioApiError) and (caught.value.http_status, caught.value.code) == (401, 20003)
    assert [r.authorized for r in fake.requests] == [False]
    assert fake.updates.empty()
    assert "not-the-token" not in caplog.text and fake.auth_token not in caplog.text
    assert sid in caplog.text


async def test_an_unreachable_api_is_a_retryable_error_after_bounded_retries() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sid = "CA" + "1" * 32

    with (
        TwilioRest("AC" + "0" * 32, "token", f"http://127.0.0.1:{port}", backoff_s=0.01) as rest,
        pytest.raises(TransferError) as caught,
    ):
        await asyncio.to_thread(rest.redirect_call, sid, TWIML)

    assert caught.value.retryable and caught.value.call_sid == sid
    assert isinstance(caught.value, TwilioApiError) and caught.value.http_status is None


async def test_the_fake_records_every_request_in_order(fake: TwilioFake, rest: TwilioRest) -> None:
    caller = fake.add_call()
    agent = fake.add_call(status="ringing")
    fake.set_queue_stats(WORKSPACE, QUEUE, available_workers=1)

    await asyncio.to_thread(rest.queue_statistics, WORKSPACE, QUEUE)
    await asyncio.to_thread(rest.redirect_call, caller, TWIML)
    await asyncio.to_thread(rest.cancel_leg, agent, False)
    new = await asyncio.to_thread(rest.create_call, "+15551230000", "+15005550006", "https://bot.example.com/cb")
    await asyncio.to_thread(rest.end_call, new)

    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", f"/v1/Workspaces/{WORKSPACE}/TaskQueues/{QUEUE}/RealTimeStatistics"),
        ("POST", calls_path(fake, caller)),
        ("POST", calls_path(fake, agent)),
        ("POST", calls_path(fake)),
        ("POST", calls_path(fake, new)),
    ]
    times = [r.at for r in fake.requests]
    assert times == sorted(times)
    assert [u.call_sid for u in drain(fake.updates)] == [caller, agent, new]


async def test_twilio_region_and_edge_settings_do_not_lead_away_from_the_base_url(
    fake: TwilioFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # twilio-python rewrites hosts for TWILIO_REGION/TWILIO_EDGE before the HTTP client runs; the rewrite wins.
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    sid = fake.add_call()

    with TwilioRest(fake.account_sid, fake.auth_token, fake.base_url) as rest:
        await asyncio.to_thread(rest.redirect_call, sid, TWIML)

    assert fake.requests[0].path == calls_path(fake, sid)


def test_base_url_client_keeps_path_and_query_and_prefixes_the_base_path() -> None:
    client = BaseUrlHttpClient("http://127.0.0.1:8123/twilio/")

    assert (
        client.rewrite("https://taskrouter.twilio.com/v1/Workspaces/WS1/Workers?PageSize=50&Page=1")
        == "http://127.0.0.1:8123/twilio/v1/Workspaces/WS1/Workers?PageSize=50&Page=1"
    )
    assert client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Calls/CA1.json") == (
        "http://127.0.0.1:8123/twilio/2010-04-01/Accounts/AC1/Calls/CA1.json"
    )


def test_twilios_own_hosts_keep_each_domain_on_its_own_host() -> None:
    # Rewriting taskrouter.twilio.com to api.twilio.com would break TaskRouter in production.
    with TwilioRest("AC" + "0" * 32, "token") as rest:
        assert not isinstance(rest._http, BaseUrlHttpClient)
    with pytest.raises(ValueError):
        BaseUrlHttpClient("ftp://example.com")


def test_argument_mistakes_are_caught_before_any_request() -> None:
    with TwilioRest("AC" + "0" * 32, "token", "http://127.0.0.1:9") as rest:
        with pytest.raises(ValueError):
            rest.end_call("CA" + "0" * 32, status="hangup")
        with pytest.raises(ValueError):
            rest.create_call("+1", "+2", "https://x", machine_detection="enable")


def drain(queue: asyncio.Queue[CallUpdate]) -> list[CallUpdate]:
    items: list[CallUpdate] = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
