"""A reviewed call becomes a regression scenario: replayed into a database, marked by a reviewer, exported, and
replayed again, it passes or fails as the verdict says; keys, barge-ins and the recogniser's doubt come along."""

from __future__ import annotations

from pathlib import Path

import pytest

from telephony.replay.checks import check
from telephony.replay.errors import ScenarioError
from telephony.replay.export import export_scenario
from telephony.replay.in_process import replay_in_process
from telephony.replay.player import ReplayOptions
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import Scenario, load_scenario
from telephony.server.settings import Settings
from telephony.store import Store
from telephony.store.review_records import Verdict

SCENARIOS = Path(__file__).resolve().parents[3] / "audio_fixtures" / "scenarios"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(tts_cache_dir=tmp_path_factory.mktemp("tts"), _env_file=None)  # type: ignore[call-arg]


async def replayed(scenario: Scenario, settings: Settings) -> tuple[ReplayResult, bool]:
    result = await replay_in_process(scenario, ReplayOptions(out_dir=None), settings=settings)
    return result, all(c.ok for c in check(result, scenario.expect))


async def stored_call(name: str, settings: Settings, tmp_path: Path) -> tuple[Store, str]:
    """Replay a scenario into a database of its own; the store and the call's SID."""
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    result, passed = await replayed(load_scenario(SCENARIOS / name), settings.model_copy(update={"database_url": url}))
    assert passed
    store = Store(url)
    return store, result.call_sid


def export(store: Store, call_sid: str, out: Path) -> Scenario:
    handoff = store.handoff_for_call(call_sid)
    review = store.review(str(handoff["handoff_id"])) if handoff else None
    return load_scenario(export_scenario(store.get_call(call_sid), review, out))


async def test_a_necessary_transfer_exports_as_a_passing_scenario_and_an_avoidable_one_fails(
    settings: Settings, tmp_path: Path
) -> None:
    store, sid = await stored_call("talk_to_a_person.yaml", settings, tmp_path)
    handoff_id = str(store.handoff_for_call(sid)["handoff_id"])  # type: ignore[index]
    store.save_review(handoff_id, "rae", Verdict("necessary"))
    necessary = export(store, sid, tmp_path / "person_necessary.yaml")
    assert necessary.name == "person-necessary" and necessary.expect.decision == "handoff"
    assert necessary.expect.queue == "orders" and necessary.expect.reason is not None
    assert [s.say for s in necessary.caller] == [
        s.say for s in load_scenario(SCENARIOS / "talk_to_a_person.yaml").caller
    ]
    result, passed = await replayed(necessary, settings)
    assert passed, result.checks

    store.save_review(handoff_id, "rae", Verdict("avoidable", "trigger", "the bot could have tracked the order"))
    avoidable = export(store, sid, tmp_path / "person_avoidable.yaml")
    assert avoidable.expect.decision == "end" and "trigger" in avoidable.description
    _, passed = await replayed(avoidable, settings)
    assert not passed

    store.save_review(handoff_id, "rae", Verdict("avoidable", "routing", None, "billing"))
    elsewhere = export(store, sid, tmp_path / "person_elsewhere.yaml")
    result, passed = await replayed(elsewhere, settings)
    failed = [c.name for c in check(result, elsewhere.expect) if not c.ok]
    assert not passed and failed == ["queue"]
    store.close()


async def test_keys_and_the_recognisers_doubt_are_exported_and_replay_the_same_way(
    settings: Settings, tmp_path: Path
) -> None:
    store, sid = await stored_call("low_asr_confidence.yaml", settings, tmp_path)
    store.save_review(str(store.handoff_for_call(sid)["handoff_id"]), "rae", Verdict("necessary"))  # type: ignore[index]
    scenario = export(store, sid, tmp_path / "doubt.yaml")
    assert [(s.kind, s.confidence if s.kind == "speech" else s.dtmf) for s in scenario.caller] == [
        ("speech", 0.3), ("speech", 0.35), ("dtmf", "0"),
    ]  # fmt: skip
    result, passed = await replayed(scenario, settings)
    assert passed, result.checks
    assert result.handoff is not None and result.handoff["reason"]["trigger"] == "low_asr_confidence"
    store.close()


async def test_talking_over_the_bot_is_exported_as_a_barge_in(settings: Settings, tmp_path: Path) -> None:
    store, sid = await stored_call("barge_in.yaml", settings, tmp_path)
    store.save_review(str(store.handoff_for_call(sid)["handoff_id"]), "rae", Verdict("necessary"))  # type: ignore[index]
    scenario = export(store, sid, tmp_path / "barge.yaml")
    first = scenario.caller[0]
    assert first.barge_in_ms is not None and 600 <= first.barge_in_ms <= 2500
    result, passed = await replayed(scenario, settings)
    assert passed, result.checks
    store.close()


async def test_a_call_without_a_handoff_cannot_be_called_a_necessary_transfer(
    settings: Settings, tmp_path: Path
) -> None:
    store, sid = await stored_call("hours_resolved.yaml", settings, tmp_path)
    with pytest.raises(ScenarioError, match="no handoff"):
        export_scenario(store.get_call(sid), {"verdict": "necessary"}, tmp_path / "x.yaml")
    written = export_scenario(store.get_call(sid), {"verdict": "avoidable"}, tmp_path / "hours.yaml")
    assert load_scenario(written).expect.decision == "end"
    store.close()
