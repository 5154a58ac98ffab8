"""What a replay saw, as written to the result JSON (the README documents every field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telephony.replay.line import LineEvent


@dataclass
class ReplayResult:
    """Everything a replay saw, as written to the result JSON."""

    scenario: str
    call_sid: str
    asr: str
    clock: str = "virtual"
    outcome: dict[str, Any] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    handoff: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[dict[str, Any]] = field(default_factory=list)
    bot_audio_wav: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    passed: bool | None = None
    server_record: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "server_record"}

    def add_line_events(self, events: list[LineEvent]) -> None:
        self.events.extend({"source": "line", "t_ms": e.t_ms, "kind": e.kind, "detail": e.detail} for e in events)

    def collect(self, record: dict[str, Any]) -> None:
        """Take in the server's call record (GET /api/calls/{sid}): transcript, prompts, decision, timeline."""
        self.server_record = record
        self.outcome["kind"] = final_kind(self.outcome, record)
        self.transcript = [
            {k: turn.get(k) for k in ("speaker", "text", "start_ms", "end_ms", "confidence")}
            for turn in record.get("turns", [])
        ]
        self.prompts = [
            {
                "prompt_id": p["prompt_id"],
                "text": p["text"],
                "start_ms": p["play_start_ms"],
                "duration_ms": p["duration_ms"],
                "cut_off": p["cut_off"],
                "heard_ms": p["heard_ms"],
            }
            for p in record.get("prompts", [])
        ]
        decision = record.get("decision")
        self.decision = decision
        self.handoff = decision.get("package") if decision else None
        self.latencies = record.get("latencies", [])
        timing = self.outcome.get("timing")
        if decision and isinstance(timing, dict):
            from telephony.replay.conference import time_to_human_ms

            waited = time_to_human_ms(timing, int(decision.get("decided_ms", 0)), bool(self.outcome.get("conference")))
            self.outcome["time_to_human_ms"] = waited  # simulated: the scenario's ring and press-1 times
        self.events.extend({"source": "server", **entry} for entry in record.get("timeline", []))
        self.events.sort(key=lambda e: e["t_ms"])


def final_kind(outcome: dict[str, Any], record: dict[str, Any]) -> str:
    """What the call came to, in one word: voicemail, enqueue, transfer, callback, ticket or hangup."""
    if outcome.get("by") == "caller":
        return "hangup"
    if outcome.get("voicemail"):
        return "voicemail"
    if outcome.get("enqueued"):
        return "enqueue"
    attempts = outcome.get("attempts", [])
    if any(a.get("agent") == "answer" and a.get("dial_status") == "completed" for a in attempts):
        return "transfer"
    if record.get("callbacks"):
        return "callback"
    decision = record.get("decision") or {}
    if decision.get("mode") == "ticket":
        return "ticket"
    return "transfer" if attempts else "hangup"
