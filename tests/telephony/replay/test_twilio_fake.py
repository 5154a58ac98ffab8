"""The Twilio fake itself: Twilio's shapes as the real twilio client parses them, auth, errors, and recording."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from telephony.replay.twilio_fake import CallUpdate, TwilioFake
from telephony.twilio.rest import BaseUrlHttpClient

WORKSPACE = "WS" + "a" * 32
QUEUE = "WQ" + "b" * 32


@pytest.fixture
async def fake() -> AsyncIterator[TwilioFake]:
    async with TwilioFake.running() as fake:
        yield fake


@pytest.fixture
async def http(fake: TwilioFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, auth=(fake.account_sid, fake.auth_token)) as client:
        yield client


def twilio_client(fake: TwilioFake) -> Client:
    """The real twilio client, every domain sent to the fake."""
    return Client(fake.account_sid, fake.auth_token, http_client=BaseUrlHttpClient(fake.base_url))


def calls_path(fake: TwilioFake, sid: str | None = None) -> str:
    base = f"/2010-04-01/Accounts/{fake.account_sid}/Calls"
    return f"{base}/{sid}.json" if sid else f"{base}.json"


async def test_it_serves_on_loopback_and_stops_when_the_block_ends() -> None:
    async with TwilioFake.running() as fake:
        base_url = fake.base_url
        assert base_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(base_url + "/")


async def test_the_real_client_parses_a_fetched_call(fake: TwilioFake) -> None:
    sid = fake.add_call(to="+15005550006", from_="+15551230000")

    call = await asyncio.to_thread(lambda: twilio_client(fake).calls(sid).fetch())

    assert (call.sid, call.account_sid, call.status, call.direction) == (
        sid,
        fake.account_sid,
        "in-progress",
        "inbound",
    )
    assert (call.to, call._from) == ("+15005550006", "+15551230000")
    assert isinstance(call.date_created, datetime) and call.date_created.tzinfo is not None
    assert isinstance(call.start_time, datetime) and call.end_time is None
    assert call.uri == calls_path(fake, sid)


async def test_the_real_client_creates_a_queued_outbound_call(fake: TwilioFake) -> None:
    call = await asyncio.to_thread(
        lambda: twilio_client(fake).calls.create(to="client:agent1", from_="+15005550006", url="https://x.example/a")
    )

    assert call.sid in fake.calls and call.status == "queued" and call.direction == "outbound-api"
    assert call.start_time is None


async def test_the_real_client_parses_queue_real_time_statistics(fake: TwilioFake) -> None:
    fake.set_queue_stats(WORKSPACE, QUEUE, available_workers=1, eligible_workers=3, pending=2, longest_wait_s=40)

    stats = await asyncio.to_thread(
        lambda: (
            twilio_client(fake).taskrouter.v1.workspaces(WORKSPACE).task_queues(QUEUE).real_time_statistics().fetch()
        )
    )

    assert (stats.total_available_workers, stats.total_eligible_workers, stats.total_tasks) == (1, 3, 2)
    assert stats.longest_task_waiting_age == 40 and stats.tasks_by_status is not None
    assert stats.tasks_by_status["pending"] == 2
    assert (stats.workspace_sid, stats.task_queue_sid) == (WORKSPACE, QUEUE)
    assert stats.url == f"{fake.base_url}/v1/Workspaces/{WORKSPACE}/TaskQueues/{QUEUE}/RealTimeStatistics"


async def test_the_real_client_sees_twilios_error_fields(fake: TwilioFake) -> None:
    sid = fake.add_call()
    fake.fail_next(sid, status=503)

    with pytest.raises(TwilioRestException) as caught:
        await asyncio.to_thread(lambda: twilio_client(fake).calls(sid).update(twiml="<Response/>"))

    assert (caught.value.status, caught.value.code) == (503, 20500)


async def test_requests_without_the_right_credentials_get_twilios_401(fake: TwilioFake) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        anonymous = await client.get(calls_path(fake, "CA" + "0" * 32))
        wrong = await client.get(calls_path(fake, "CA" + "0" * 32), auth=(fake.account_sid, "guess"))

    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
        assert response.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }
    assert [r.authorized for r in fake.requests] == [False, False]


async def test_unknown_calls_accounts_and_paths_are_twilio_404s(fake: TwilioFake, http: httpx.AsyncClient) -> None:
    other_account = "/2010-04-01/Accounts/AC" + "f" * 32 + "/Calls.json"
    for response in (
        await http.get(calls_path(fake, "CA" + "0" * 32)),
        await http.post(other_account, data={"To": "+1", "From": "+2", "Url": "https://x"}),
        await http.get("/v1/Workspaces/" + WORKSPACE),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == 20404 and response.json()["status"] == 404


async def test_create_checks_its_required_fields(fake: TwilioFake, http: httpx.AsyncClient) -> None:
    no_to = await http.post(calls_path(fake), data={"From": "+15005550006", "Url": "https://x"})
    no_twiml = await http.post(calls_path(fake), data={"To": "+15551230000", "From": "+15005550006"})

    assert (no_to.status_code, no_to.json()["code"]) == (400, 21201)
    assert no_twiml.status_code == 400
    assert not fake.calls


async def test_canceling_an_answered_call_has_no_effect_but_completing_it_ends_it(
    fake: TwilioFake, http: httpx.AsyncClient
) -> None:
    sid = fake.add_call(status="in-progress")

    canceled = await http.post(calls_path(fake, sid), data={"Status": "canceled"})
    completed = await http.post(calls_path(fake, sid), data={"Status": "completed"})

    assert canceled.json()["status"] == "in-progress"
    assert completed.json()["status"] == "completed" and completed.json()["end_time"]
    assert [u.call_status for u in (fake.updates.get_nowait(), fake.updates.get_nowait())] == [
        "in-progress",
        "completed",
    ]


async def test_an_ended_call_cannot_be_redirected(fake: TwilioFake, http: httpx.AsyncClient) -> None:
    sid = fake.add_call(status="completed")

    response = await http.post(calls_path(fake, sid), data={"Twiml": "<Response/>"})

    assert (response.status_code, response.json()["code"]) == (400, 21220)
    assert fake.updates.empty()


async def test_twiml_and_url_are_mutually_exclusive(fake: TwilioFake, http: httpx.AsyncClient) -> None:
    sid = fake.add_call()

    response = await http.post(calls_path(fake, sid), data={"Twiml": "<Response/>", "Url": "https://x"})

    assert response.status_code == 400 and fake.updates.empty()


async def test_a_redirect_is_announced_to_the_callback_and_the_queue(fake: TwilioFake, http: httpx.AsyncClient) -> None:
    heard: list[CallUpdate] = []

    async def on_update(update: CallUpdate) -> None:
        heard.append(update)

    fake.on_call_update = on_update
    sid = fake.add_call()

    await http.post(calls_path(fake, sid), data={"Url": "https://bot.example.com/twiml/transfer", "Method": "POST"})

    expected = CallUpdate(sid, None, "https://bot.example.com/twiml/transfer", None, "in-progress")
    assert heard == [expected] and expected.redirected
    assert await asyncio.wait_for(fake.updates.get(), 1) == expected


async def test_injected_failures_match_path_and_method_and_run_out(fake: TwilioFake, http: httpx.AsyncClient) -> None:
    sid = fake.add_call()
    fake.fail_next(sid, status=500, times=2, method="POST")

    fetched = await http.get(calls_path(fake, sid))
    first = await http.post(calls_path(fake, sid), data={"Twiml": "<Response/>"})
    second = await http.post(calls_path(fake, sid), data={"Twiml": "<Response/>"})
    third = await http.post(calls_path(fake, sid), data={"Twiml": "<Response/>"})

    assert [r.status_code for r in (fetched, first, second, third)] == [200, 500, 500, 200]
    assert first.json() == {
        "code": 20500,
        "message": "Injected failure (HTTP 500)",
        "more_info": "https://www.twilio.com/docs/errors/20500",
        "status": 500,
    }
    assert fake.updates.qsize() == 1


async def test_it_records_method_path_query_and_every_form_value(fake: TwilioFake, http: httpx.AsyncClient) -> None:
    fake.set_queue_stats(WORKSPACE, QUEUE)
    path = f"/v1/Workspaces/{WORKSPACE}/TaskQueues/{QUEUE}/RealTimeStatistics"

    await http.get(path, params={"TaskChannel": "voice"})
    await http.post(
        calls_path(fake),
        content="To=%2B15551230000&From=%2B15005550006&Url=https%3A%2F%2Fx&StatusCallbackEvent=ringing"
        "&StatusCallbackEvent=answered",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    stats, create = fake.requests
    assert (stats.method, stats.path, stats.query, stats.form) == ("GET", path, {"TaskChannel": "voice"}, {})
    assert create.form["To"] == "+15551230000" and create.form["StatusCallbackEvent"] == "answered"
    assert [v for k, v in create.form_items if k == "StatusCallbackEvent"] == ["ringing", "answered"]
    assert stats.at <= create.at
    assert fake.requests_to("/Calls", method="post") == [create]
