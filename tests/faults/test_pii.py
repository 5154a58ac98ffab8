"""PII in many spoken and written forms, through a whole call: none of it, raw, reaches the API, any stored row,
the whisper, the help desk's package, the console's card, or the server's log (issue 11, item 7).

Phone numbers are kept on purpose (the callback needs them); every other form below must be masked.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from telephony.replay.scenario import Scenario
from telephony.server.console.accounts import hash_password
from tests.faults.conftest import running
from tests.telephony.server.harness import Receiver

SAID = [
    "I need to update the card on my account, it's 4111 1111 1111 1111, and the old one was 5500-0000-0000-0004.",
    "The backup card is four one one one, one one one one, one one one one, one one one one.",
    "Or the dotted one, 4012.8888.8888.1881. My social is 123-45-6789.",
    "Social security number one two three four five six seven eight nine. The code they texted is 482913.",
    "My PIN is 7351, and my passport number is 987654321. Email me at jane.doe@example.com",
    "or at jane dot doe at example dot com. The verification code is nine one seven two six four.",
]
RAW = [
    "4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004", "5500000000000004", "4012.8888.8888.1881",
    "4012888888881881", "four one one one, one one one one", "123-45-6789", "123456789",
    "one two three four five six seven eight nine", "482913", "7351", "987654321", "jane.doe@example.com",
    "jane dot doe at example dot com", "nine one seven two six four",
]  # fmt: skip


def leaks(haystack: str) -> list[str]:
    """The raw forms found in `haystack` (digits also once separators are taken out)."""
    found = [raw for raw in RAW if raw.lower() in haystack.lower()]
    squeezed = re.sub(r"(?<=\d)[ .-](?=\d)", "", haystack)
    found += [raw for raw in RAW if raw.isdigit() and len(raw) >= 9 and raw in squeezed and raw not in found]
    return found


async def test_no_raw_pii_reaches_anything_a_call_leaves_behind(
    tmp_path: Path, receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook, url = receiver
    steps: list[dict[str, object]] = [{"say": " ".join(SAID)}, {"say": "Can I talk to someone about this?"}]
    scenario = Scenario.model_validate({"name": "pii", "call": {"from": "+15551230009"}, "caller": steps})
    async with running(tmp_path / "data", url) as server:
        server.services.store.add_user("ada", hash_password("a long enough password"), "agent")
        result = await server.replay_scenario(scenario, tmp_path / "tts")
        assert result.handoff is not None
        assert await server.services.desk.ledger.outbox.flush(10)
        await server.services.deliverer.drain()  # type: ignore[union-attr]
        call = await server.get(f"/api/calls/{result.call_sid}")
        handoffs = await server.get("/api/handoffs")
        with server.services.store.engine.connect() as db:
            rows = {
                table: [dict(r._mapping) for r in db.execute(text(f"SELECT * FROM {table}"))]
                for table in ("calls", "turns", "prompts", "events", "handoffs", "deliveries", "dial_attempts")
            }
        async with httpx.AsyncClient(base_url=server.base) as http:
            form = await http.get("/console/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            await http.post("/console/login", data={"name": "ada", "password": "a long enough password",
                                                     "csrf_token": token})  # fmt: skip
            card = await http.get(f"/console/handoffs/{result.handoff['handoff_id']}")
            assert card.status_code == 200
    transcript = " ".join(t["text"] for t in call["transcript"])
    assert "[card number]" in transcript and "[email]" in transcript  # what was said is kept, masked
    places = {
        "the API's call": json.dumps(call),
        "the API's handoffs": json.dumps(handoffs),
        "the stored rows": json.dumps(rows, default=str),
        "the whisper": str(result.outcome.get("whisper", "")),
        "the help desk's packages": json.dumps([r["body"] for r in hook.received]),
        "the console's card": card.text,
        "the server's log": "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx")),
    }
    assert hook.received, "the help desk got no package"
    assert "[card number]" in places["the stored rows"] and places["the whisper"]  # there was something to check
    assert {place: leaks(haystack) for place, haystack in places.items()} == {key: [] for key in places}
