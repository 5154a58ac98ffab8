"""Oracle ASR with noise (`--asr-wer 0.15`): the explicit-request and risk triggers still fire.

The noise is deterministic for a seed, so each case below is the same call every run.
"""

from __future__ import annotations

import pytest

from telephony.server.settings import Settings
from tests.scenarios.conftest import load, replay, timeline

WER = 0.15
RISK = "risk_compliance"
CASES = [  # the trigger that must fire; for a risk, any risk trigger is a person for a risk reason
    ("explicit_request_known_topic.yaml", "explicit_request"),
    ("explicit_request_insists.yaml", "explicit_request"),
    ("billing_dispute.yaml", RISK),
    ("security_issue.yaml", RISK),
    ("cancellation.yaml", "cancellation"),
    ("legal_threat.yaml", RISK),
    ("distress.yaml", "distress_marker"),
    ("order_to_refund_dispute.yaml", RISK),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("name", "trigger"), CASES, ids=[c[0].removesuffix(".yaml") for c in CASES])
async def test_trigger_fires_through_word_errors(name: str, trigger: str, seed: int, settings: Settings) -> None:
    result = await replay(load(name), settings, wer=WER, seed=seed)
    assert result.handoff is not None, timeline(result)
    reason = result.handoff["reason"]
    assert (reason["category"] if trigger == RISK else reason["trigger"]) == trigger, timeline(result)


async def test_noise_changes_what_was_heard_and_repeats_for_a_seed(settings: Settings) -> None:
    scenario = load("login_lockout.yaml")
    clean = await replay(scenario, settings)
    noisy = [await replay(scenario, settings, wer=0.3, seed=7) for _ in range(2)]
    heard = [[t["text"] for t in r.transcript if t["speaker"] == "caller"] for r in (clean, *noisy)]
    assert heard[1] != heard[0]  # words were substituted or dropped
    assert heard[1] == heard[2]  # and the same seed gives the same errors
