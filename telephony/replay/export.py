"""A reviewed call becomes a regression scenario: the stored call (what the caller said and keyed, when, how
sure the recogniser was, whether they hung up, how the agent legs went) written as a replay scenario, with
an `expect` block from the reviewer's verdict.

A necessary transfer expects the same category and queue again. An avoidable one expects the call to end, or
to reach the queue the reviewer named, so the scenario fails until the layer at fault is tuned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from telephony.replay.errors import ScenarioError
from telephony.replay.scenario import AgentBehaviour, Scenario

MAX_PAUSE_MS = 30_000
AGENT_BY_OUTCOME: dict[str, AgentBehaviour] = {
    "bridged": "answer",
    "declined": "reject-whisper",
    "busy": "busy",
    "no_answer": "no-answer",
    "failed": "failed",
    "voicemail_reached": "voicemail",
    "caller_hung_up_before_bridge": "caller-hangs-up",
}


class _Stored(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StoredTurn(_Stored):
    speaker: str
    text: str
    start_ms: int
    end_ms: int
    confidence: float | None = None


class StoredPrompt(_Stored):
    prompt_id: str
    play_start_ms: int
    duration_ms: int
    heard_ms: int | None = None
    cut_off: bool = False


class StoredEvent(_Stored):
    kind: str
    t_ms: int = 0
    detail: dict[str, object] = {}


class StoredHandoff(_Stored):
    handoff_id: str
    category: str
    trigger: str
    queue: str
    status: str


class StoredAttempt(_Stored):
    outcome: str


class StoredVoicemail(_Stored):
    recording_url: str | None = None


class StoredCall(_Stored):
    """The parts of GET /api/calls/{sid} a scenario is made from."""

    call_sid: str
    caller: str | None = None
    called: str | None = None
    created_at: datetime
    stream_end: str | None = None
    transcript: list[StoredTurn] = []
    prompts: list[StoredPrompt] = []
    events: list[StoredEvent] = []
    handoff: StoredHandoff | None = None
    dial_attempts: list[StoredAttempt] = []
    voicemails: list[StoredVoicemail] = []


class StoredReview(_Stored):
    verdict: Literal["avoidable", "necessary"]
    layer: str | None = None
    note: str | None = None
    expected_queue: str | None = None
    reviewer: str = ""


@dataclass(frozen=True)
class _Act:
    """Something the caller did, at call time: speech, keys, or hanging up."""

    t_ms: int
    step: dict[str, object]


def _acts(call: StoredCall) -> list[_Act]:
    acts = [
        _Act(t.start_ms, {"say": t.text, "confidence": round(t.confidence if t.confidence is not None else 0.95, 3)})
        for t in call.transcript
        if t.speaker == "caller" and t.text.strip()
    ]
    prompt_starts = sorted(p.play_start_ms for p in call.prompts)
    keys: list[_Act] = []
    for event in call.events:
        digit = event.detail.get("digit")
        if event.kind != "dtmf" or not isinstance(digit, str):
            continue
        same_run = keys and not any(keys[-1].t_ms < start <= event.t_ms for start in prompt_starts)
        if same_run:  # keys pressed with no prompt between them are one step
            keys[-1] = _Act(keys[-1].t_ms, {"dtmf": f"{keys[-1].step['dtmf']}{digit}"})
        else:
            keys.append(_Act(event.t_ms, {"dtmf": digit}))
    acts += keys
    decided = any(e.kind == "decision" for e in call.events)
    stops = [e.t_ms for e in call.events if e.kind == "stop"]
    if call.stream_end == "caller_stop" and not decided and stops:
        acts.append(_Act(stops[0], {"hangup": True}))
    return sorted(acts, key=lambda a: a.t_ms)


def _stopped_at(prompt: StoredPrompt) -> int:
    """When the prompt stopped playing: its end, or where the caller cut it off."""
    if prompt.cut_off and prompt.heard_ms is not None:
        return prompt.play_start_ms + prompt.heard_ms
    return prompt.play_start_ms + prompt.duration_ms


def _timed(act: _Act, prompts: list[StoredPrompt]) -> dict[str, object]:
    """The step with its timing: a barge-in into the prompt playing then, or a pause after the bot went quiet."""
    before = [p for p in prompts if p.play_start_ms <= act.t_ms]
    if not before:
        return {**act.step, "pause_ms": min(max(act.t_ms, 0), MAX_PAUSE_MS)}
    playing = before[-1]
    talking = act.t_ms <= _stopped_at(playing) and act.t_ms < playing.play_start_ms + playing.duration_ms
    if talking and "hangup" not in act.step:  # the caller spoke or keyed into the prompt (and cut it, or not)
        return {**act.step, "barge_in_ms": max(act.t_ms - playing.play_start_ms, 0)}
    bot_done = max(_stopped_at(p) for p in before)
    return {**act.step, "pause_ms": min(max(act.t_ms - bot_done, 0), MAX_PAUSE_MS)}


def _expect(call: StoredCall, review: StoredReview) -> dict[str, object]:
    if review.verdict == "necessary":
        if call.handoff is None:
            raise ScenarioError(f"call {call.call_sid} has no handoff: there is no transfer to call necessary")
        return {
            "decision": "handoff",
            "reason": {"category": call.handoff.category},
            "queue": call.handoff.queue,
        }
    if review.expected_queue:
        return {"decision": "handoff", "queue": review.expected_queue}
    return {"decision": "end"}


def scenario_from_call(call: StoredCall, review: StoredReview, name: str) -> dict[str, object]:
    """The scenario file's content for a stored call and its verdict (validated against `Scenario`)."""
    steps = [_timed(act, call.prompts) for act in _acts(call)]
    if not steps:
        raise ScenarioError(f"call {call.call_sid} has nothing the caller said or keyed: no scenario to write")
    described = [f"Exported from call {call.call_sid} of {call.created_at.isoformat()}."]
    described.append(f"Reviewed by {review.reviewer or 'a reviewer'}: {review.verdict}")
    if review.layer:
        described.append(f"(layer at fault: {review.layer})")
    if review.note:
        described.append(f"- {review.note}")
    recordings = [v.recording_url for v in call.voicemails if v.recording_url]
    if recordings:
        described.append(f"Recording: {recordings[0]}")
    content: dict[str, object] = {
        "name": name,
        "description": " ".join(described),
        "at": call.created_at.isoformat(),
        "call": {"from": call.caller or "+15551230000", **({"to": call.called} if call.called else {})},
    }
    agents = [AGENT_BY_OUTCOME[a.outcome] for a in call.dial_attempts if a.outcome in AGENT_BY_OUTCOME]
    if agents:
        content["agent"] = agents if len(agents) > 1 else agents[0]
    content["caller"] = steps
    content["expect"] = _expect(call, review)
    try:
        Scenario.model_validate(content)
    except ValidationError as exc:
        raise ScenarioError(f"the exported scenario of {call.call_sid} is not valid: {exc}") from None
    return content


def export_scenario(stored_call: object, stored_review: object, out: Path) -> Path:
    """Write the scenario of a stored call (GET /api/calls/{sid}'s shape) and its review to `out`."""
    try:
        call = StoredCall.model_validate(stored_call)
        review = StoredReview.model_validate(stored_review)
    except ValidationError as exc:
        raise ScenarioError(f"the stored call or its review cannot be read: {exc}") from None
    content = scenario_from_call(call, review, out.stem.replace("_", "-"))
    out.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=110)
    out.write_text(f"# Exported by `handoff review export` from a reviewed call.\n{text}", encoding="utf-8")
    return out
