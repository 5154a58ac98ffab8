"""Scenario files: a valid file loads with its steps, bad ones fail with a ScenarioError that names the file and
the field path, the oracle script lists what the caller says, and every shipped scenario validates.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from telephony import TelephonyError
from telephony.replay.errors import ScenarioError
from telephony.replay.scenario import CallerStep, Scenario, load_scenario

SCENARIOS_DIR = Path(__file__).resolve().parents[3] / "audio_fixtures" / "scenarios"

VALID = """\
name: order-then-agent
description: A caller asks about an order, then for a person.
call:
  from: "+15551230003"
  parameters: {Channel: test}
agent: busy
caller:
  - say: "Where is my order?"
    audio: clips/order.wav
    confidence: 0.8
  - silence_ms: 500
  - dtmf: "1#"
    wait_for_bot: false
  - say: "Operator, please."
    barge_in_ms: 300
  - hangup: true
expect:
  decision: handoff
  outcome: transfer
  heard: ["where is my order"]
  reason: {trigger: explicit_request}
max_call_ms: 30000
"""


def write(tmp_path: Path, text: str, name: str = "call.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def valid_file(tmp_path: Path) -> Path:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "order.wav").write_bytes(b"RIFF")
    return write(tmp_path, VALID)


def test_load_scenario_reads_a_valid_file(valid_file: Path) -> None:
    scenario = load_scenario(valid_file)
    assert scenario.name == "order-then-agent"
    assert scenario.source == valid_file
    assert scenario.agent == "busy"
    assert scenario.call.from_number == "+15551230003"
    assert scenario.call.to_number == "+15559870000"  # default
    assert scenario.call.parameters == {"Channel": "test"}
    assert [step.kind for step in scenario.caller] == ["speech", "silence", "dtmf", "speech", "hangup"]
    assert scenario.caller[3].barge_in_ms == 300
    assert scenario.caller[2].wait_for_bot is False
    assert scenario.expect.decision == "handoff"
    assert scenario.expect.reason is not None and scenario.expect.reason.trigger == "explicit_request"
    assert scenario.max_call_ms == 30000
    assert scenario.resolve("clips/order.wav") == valid_file.parent / "clips" / "order.wav"


def test_oracle_script_lists_speech_steps_in_order_with_confidences(valid_file: Path) -> None:
    assert load_scenario(valid_file).oracle_script() == [("Where is my order?", 0.8), ("Operator, please.", 0.95)]


BAD_FILES = [
    pytest.param(
        "name: x\ncaller:\n  - say: hi\n  - say: hi\n    dtmf: '1'\n",
        ["caller[1]", "exactly one of"],
        id="two-kinds",
    ),
    pytest.param(
        "name: x\ncaller:\n  - silence_ms: 100\n    hangup: true\n",
        ["caller[0]", "exactly one"],
        id="silence-and-hangup",
    ),
    pytest.param("name: x\ncaller:\n  - {}\n", ["caller[0]", "exactly one"], id="no-kind"),
    pytest.param("name: x\ncaller:\n  - audio: a.wav\n", ["caller[0]", "needs `say`"], id="audio-without-say"),
    pytest.param("name: x\ncaller:\n  - say: hi\n  - dtmf: '12a'\n", ["caller[1].dtmf", "pattern"], id="bad-dtmf"),
    pytest.param("name: x\ncaller:\n  - dtmf: ''\n", ["caller[0].dtmf"], id="empty-dtmf"),
    pytest.param(
        "name: x\ncaller:\n  - say: hi\n    barge_in_ms: -5\n", ["caller[0].barge_in_ms"], id="negative-barge-in"
    ),
    pytest.param("name: x\ncaller:\n  - say: hi\n    confidence: 1.5\n", ["caller[0].confidence"], id="confidence"),
    pytest.param("name: x\ncaller:\n  - say: hi\n    volume: 3\n", ["caller[0].volume", "Extra inputs"], id="step-key"),
    pytest.param("name: x\ncaller: []\nexpectations: {}\n", ["expectations", "Extra inputs"], id="unknown-top-key"),
    pytest.param("name: x\ncaller: []\nexpect:\n  outcome: maybe\n", ["expect.outcome"], id="bad-outcome"),
    pytest.param("name: x\ncaller: []\ncall:\n  form: '+1'\n", ["call.form"], id="call-key"),
    pytest.param("caller: []\n", ["name", "Field required"], id="missing-name"),
    pytest.param("name: x\n", ["caller", "Field required"], id="missing-caller"),
    pytest.param("- name: x\n- caller: []\n", ["must be a mapping"], id="list-not-mapping"),
    pytest.param("just a string\n", ["must be a mapping"], id="scalar-not-mapping"),
    pytest.param("", ["must be a mapping"], id="empty-file"),
    pytest.param("name: [unclosed\ncaller: []\n", ["not valid YAML"], id="invalid-yaml"),
    pytest.param("name: x\n\tcaller: []\n", ["not valid YAML"], id="tab-indent"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_load_scenario_errors_name_the_file_and_the_field_path(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message


def test_load_scenario_names_a_missing_audio_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ncaller:\n  - say: hi\n  - say: hello\n    audio: clips/missing.wav\n")
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: caller[1].audio: no such file")
    assert str(tmp_path / "clips" / "missing.wav") in message


def test_load_scenario_names_a_missing_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(path)


def test_scenario_error_is_a_telephony_error() -> None:
    assert issubclass(ScenarioError, TelephonyError)


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        ({"say": "hi"}, "speech"),
        ({"say": "hi", "audio": "a.wav"}, "speech"),
        ({"dtmf": "0"}, "dtmf"),
        ({"dtmf": "*#9"}, "dtmf"),
        ({"silence_ms": 20}, "silence"),
        ({"hangup": True}, "hangup"),
    ],
)
def test_caller_step_kind(step: dict[str, object], kind: str) -> None:
    assert CallerStep.model_validate(step).kind == kind


def test_caller_steps_are_immutable() -> None:
    step = CallerStep(say="hi")
    with pytest.raises(ValidationError):
        step.say = "bye"  # type: ignore[misc]


SHIPPED = sorted(SCENARIOS_DIR.glob("*.yaml"))


def test_the_shipped_scenarios_exist() -> None:
    assert len(SHIPPED) >= 6


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_validates(path: Path) -> None:
    scenario = load_scenario(path)
    assert isinstance(scenario, Scenario)
    assert scenario.caller
    for step in scenario.caller:
        if step.audio is not None:
            assert scenario.resolve(step.audio).is_file()
            assert step.say
