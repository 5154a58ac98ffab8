"""Scenario files: a whole call as data, replayed by `handoff replay` and checked with `--check`.

A scenario says who calls, what the caller does turn by turn (speak from an audio file or from text that
is synthesised to telephone audio, press keys, stay silent, talk over the bot, hang up), how the agent
behaves when the call is transferred, and what the call must come to (`expect`). Errors name the file,
the path inside it (`caller[2].barge_in_ms`) and what is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from telephony.replay.errors import ScenarioError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


AgentBehaviour = Literal["answer", "busy", "no-answer", "reject-whisper", "failed", "voicemail", "caller-hangs-up"]
"""What the agent leg does when a transfer rings it (a list: one per attempt, the last repeating)."""


class CallerStep(_Model):
    """One thing the caller does. Exactly one of `say`/`audio`, `dtmf`, `silence_ms` or `hangup` leads it.

    `say` is the reference text (what oracle ASR reports); with `audio` the text is what the file says,
    without it the text is synthesised. By default a step waits until the bot has finished speaking and
    then `pause_ms` more; `barge_in_ms` instead starts it that far into the bot's next prompt.
    """

    say: str | None = None
    audio: str | None = None
    confidence: float = Field(0.95, ge=0.0, le=1.0)
    dtmf: str | None = Field(None, pattern=r"^[0-9*#]+$")
    silence_ms: int | None = Field(None, ge=20, le=120_000)
    hangup: bool = False
    drop: bool = Field(False, description="the websocket drops (no stop): the call itself goes on")
    wait_for_bot: bool = True
    pause_ms: int = Field(400, ge=0, le=30_000)
    barge_in_ms: int | None = Field(None, ge=0, le=60_000)

    @model_validator(mode="after")
    def _one_kind(self) -> CallerStep:
        kinds = [
            self.say is not None or self.audio is not None,
            self.dtmf is not None,
            self.silence_ms is not None,
            self.hangup,
            self.drop,
        ]
        if sum(kinds) != 1:
            raise ValueError("a step is exactly one of: say (and/or audio), dtmf, silence_ms, hangup, drop")
        if self.audio is not None and self.say is None:
            raise ValueError("an audio step needs `say`: the reference transcript of the file")
        return self

    @property
    def kind(self) -> Literal["speech", "dtmf", "silence", "hangup", "drop"]:
        if self.dtmf is not None:
            return "dtmf"
        if self.silence_ms is not None:
            return "silence"
        if self.hangup:
            return "hangup"
        if self.drop:
            return "drop"
        return "speech"


class CallInfo(_Model):
    """The call as Twilio announces it to the voice webhook."""

    from_number: str = Field("+15551230000", alias="from")
    to_number: str = Field("+15559870000", alias="to")
    call_sid: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict, description="extra webhook form fields")


class StoredExpectation(_Model):
    """What the server's stored record (GET /api/calls/{sid}) must hold after the call."""

    handoff_status: str | None = None
    callbacks: int | None = None
    callback_window: str | None = None
    voicemails: int | None = None
    voicemail_has_recording: bool | None = None
    dial_attempts: int | None = None
    routing_mode: str | None = None
    routing_queue: str | None = None


class RestExpectation(_Model):
    """What the server asked of Twilio's REST API (the fake records every request)."""

    moved_live_call: bool | None = None
    ended_caller_call: bool | None = Field(None, description="a Status=completed/canceled on the caller's call")
    cancelled_agent_leg: bool | None = None
    failed_updates: int | None = None


class ReasonExpectation(_Model):
    category: str | None = None
    trigger: str | None = None


class Expectation(_Model):
    """What `--check` verifies; every field is optional, and only what is given is checked."""

    outcome: Literal["transfer", "hangup", "voicemail", "callback", "enqueue", "ticket"] | None = None
    target: str | None = None
    whisper_contains: list[str] = Field(default_factory=list)
    heard: list[str] = Field(default_factory=list, description="phrases the caller transcript must contain")
    bot_said: list[str] = Field(default_factory=list, description="phrases some bot prompt must contain")
    bot_never_said: list[str] = Field(default_factory=list)
    prompts_cut: int | None = None
    reason: ReasonExpectation | None = None
    queue: str | None = None
    facts: dict[str, str] = Field(default_factory=dict, description="key facts the handoff must hold")
    max_bot_turns: int | None = None
    urgency: Literal["low", "normal", "high"] | None = None
    frustrated: bool | None = None
    language: str | None = None
    authentication: str | None = None
    decision: Literal["handoff", "end"] | None = None
    dial_status: str | None = None
    attempt_outcomes: list[str] | None = Field(None, description="stored outcome of each transfer attempt, in order")
    target_contains: list[str] = Field(default_factory=list, description="text in the dialled target (SIP headers...)")
    task_attributes: dict[str, str] = Field(default_factory=dict, description="TaskRouter task attributes to hold")
    stored: StoredExpectation | None = None
    rest: RestExpectation | None = None


class TwilioFailure(_Model):
    """Make Twilio's (faked) REST API fail: requests whose path contains `path` answer `status`, `times` times."""

    path: str = "/Calls/"
    status: int = Field(500, ge=400, le=599)
    times: int = Field(3, ge=1)


class Scenario(_Model):
    """One replayable call."""

    name: str
    description: str = ""
    call: CallInfo = Field(default_factory=CallInfo)
    agent: AgentBehaviour | list[AgentBehaviour] = "answer"
    caller: list[CallerStep]
    expect: Expectation = Field(default_factory=Expectation)
    max_call_ms: int = Field(90_000, ge=1000, le=600_000)
    at: datetime = Field(
        default=datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
        description="when the call happens (opening hours, callbacks); in-process replays only. "
        "Default: a Tuesday, 10:00 in New York",
    )
    rest_transfers: bool = Field(True, description="the server may move the live call with REST")
    transfer_mode: Literal["dial", "conference"] = Field("dial", description="the server's transfer_mode setting")
    agent_answers_after_s: float = Field(3.0, ge=0, le=60, description="how long the agent's phone rings")
    agent_accepts_after_s: float = Field(1.0, ge=0, le=60, description="how long after the whisper they press 1")
    twilio_fails: list[TwilioFailure] = Field(default_factory=list, description="errors the faked REST API returns")
    repeat_callbacks: bool = Field(False, description="send every Twilio status callback twice, as Twilio may")
    source: Path | None = Field(None, exclude=True)

    def resolve(self, relative: str) -> Path:
        """A path in the scenario, relative to the scenario file's folder."""
        path = Path(relative)
        if path.is_absolute() or self.source is None:
            return path
        return self.source.parent / path

    def twilio_failures(self) -> list[tuple[str, int, int]]:
        return [(f.path, f.status, f.times) for f in self.twilio_fails]

    def oracle_script(self) -> list[tuple[str, float]]:
        """The reference text of each caller utterance, in order, for oracle ASR."""
        return [(step.say or "", step.confidence) for step in self.caller if step.kind == "speech"]


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; ScenarioError names the file, the field path and the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario must be a mapping with at least `name` and `caller`")
    try:
        scenario = Scenario.model_validate({**raw, "source": path})
    except ValidationError as exc:
        problems = "; ".join(
            f"{_path(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False, include_input=False)
        )
        raise ScenarioError(f"{path}: {problems}") from None
    for i, step in enumerate(scenario.caller):
        if step.audio is not None and not scenario.resolve(step.audio).is_file():
            raise ScenarioError(f"{path}: caller[{i}].audio: no such file {scenario.resolve(step.audio)}")
    return scenario


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"
