"""`handoff replay --check`: compare what a replayed call came to with its scenario's `expect` block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telephony.replay.result import ReplayResult
from telephony.replay.scenario import Expectation, RestExpectation, StoredExpectation


@dataclass(frozen=True)
class Check:
    """One expectation and whether the call met it."""

    name: str
    ok: bool
    expected: Any
    actual: Any

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "expected": self.expected, "actual": self.actual}


def _norm(text: str) -> str:
    return " ".join("".join(ch.lower() if ch.isalnum() else " " for ch in text).split())


def _contains(haystack: str, needle: str) -> bool:
    return f" {_norm(needle)} " in f" {_norm(haystack)} "


ANNOUNCEMENTS = ("handoff:", "voicemail_intro", "ticket_intro", "callback_offer")


def bot_turns_before_handoff(prompts: list[dict[str, Any]]) -> int:
    """Prompts the caller heard before the handoff was announced (all of them when there was none)."""
    turns = 0
    for prompt in prompts:
        if str(prompt["prompt_id"]).startswith(ANNOUNCEMENTS):
            break
        turns += 1
    return turns


def check(result: ReplayResult, expect: Expectation) -> list[Check]:
    """Every expectation given in `expect`, checked against the result; none given means none checked."""
    checks: list[Check] = []
    outcome = result.outcome
    handoff = result.handoff or {}
    caller_text = " | ".join(t["text"] for t in result.transcript if t["speaker"] == "caller")
    bot_text = " | ".join(p["text"] for p in result.prompts)

    def add(name: str, ok: bool, expected: Any, actual: Any) -> None:
        checks.append(Check(name, ok, expected, actual))

    if expect.outcome is not None:
        add("outcome", outcome.get("kind") == expect.outcome, expect.outcome, outcome.get("kind"))
    if expect.target is not None:
        add("target", outcome.get("target") == expect.target, expect.target, outcome.get("target"))
    for phrase in expect.whisper_contains:
        whisper = str(outcome.get("whisper", ""))
        add(f"whisper contains {phrase!r}", _contains(whisper, phrase), phrase, whisper)
    for phrase in expect.heard:
        add(f"caller heard saying {phrase!r}", _contains(caller_text, phrase), phrase, caller_text)
    for phrase in expect.bot_said:
        add(f"bot said {phrase!r}", _contains(bot_text, phrase), phrase, bot_text)
    for phrase in expect.bot_never_said:
        add(f"bot never said {phrase!r}", not _contains(bot_text, phrase), f"not {phrase!r}", bot_text)
    if expect.prompts_cut is not None:
        cut = sum(1 for p in result.prompts if p["cut_off"])
        add("prompts cut off", cut == expect.prompts_cut, expect.prompts_cut, cut)
    if expect.decision is not None:
        kind = result.decision.get("kind") if result.decision else None
        add("decision", kind == expect.decision, expect.decision, kind)
    if expect.reason is not None:
        reason = handoff.get("reason") or {}
        for key in ("category", "trigger"):
            wanted = getattr(expect.reason, key)
            if wanted is not None:
                add(f"reason.{key}", reason.get(key) == wanted, wanted, reason.get(key))
    if expect.queue is not None:
        queue = handoff.get("recommended_queue")
        add("queue", queue == expect.queue, expect.queue, queue)
    for kind, value in expect.facts.items():
        facts = [f for f in handoff.get("key_facts", []) if f.get("kind") == kind]
        found = [f.get("value") for f in facts]
        add(f"fact {kind}", any(_contains(str(v), value) for v in found), value, found)
    if expect.max_bot_turns is not None:
        turns = bot_turns_before_handoff(result.prompts)
        add("bot turns before the handoff", turns <= expect.max_bot_turns, f"<= {expect.max_bot_turns}", turns)
    for key in ("urgency", "frustrated", "language", "authentication"):
        wanted = getattr(expect, key)
        if wanted is not None:
            add(key, handoff.get(key) == wanted, wanted, handoff.get(key))
    if expect.attempt_outcomes is not None:
        stored = [a.get("outcome") for a in result.server_record.get("dial_attempts", [])]
        add("transfer attempt outcomes (stored)", stored == expect.attempt_outcomes, expect.attempt_outcomes, stored)
    attempts = outcome.get("attempts", [])
    for text in expect.target_contains:
        targets = [str(a.get("target")) for a in attempts]
        add(f"dialled target contains {text!r}", any(text in t for t in targets), text, targets)
    attributes = outcome.get("task_attributes") or {}
    for key, value in expect.task_attributes.items():
        actual = _dig(attributes, key)
        add(f"task attribute {key}", actual is not None and _contains(str(actual), value), value, actual)
    if expect.stored is not None:
        checks.extend(_stored(expect.stored, result.server_record))
    if expect.rest is not None:
        checks.extend(_rest(expect.rest, result))
    for repeat in outcome.get("repeated_callbacks", []):
        add(
            f"repeated callback {repeat['url'].rsplit('/', 1)[-1]} answered the same",
            repeat["same_answer"],
            True,
            repeat["same_answer"],
        )
    if expect.dial_status is not None:
        add(
            "dial status",
            outcome.get("dial_status") == expect.dial_status,
            expect.dial_status,
            outcome.get("dial_status"),
        )
    return checks


def _dig(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _stored(expect: StoredExpectation, record: dict[str, Any]) -> list[Check]:
    """The server's stored record, read back through its API."""
    handoff = record.get("handoff") or {}
    routing = handoff.get("routing") or {}
    callbacks = record.get("callbacks", [])
    voicemails = record.get("voicemails", [])
    found = {
        "handoff_status": handoff.get("status"),
        "callbacks": len(callbacks),
        "callback_window": callbacks[0].get("window") if callbacks else None,
        "voicemails": len(voicemails),
        "voicemail_has_recording": bool(
            voicemails and voicemails[0].get("recording_sid") and voicemails[0].get("recording_url")
        ),
        "dial_attempts": len(record.get("dial_attempts", [])),
        "routing_mode": routing.get("mode"),
        "routing_queue": routing.get("queue"),
    }
    return [
        Check(f"stored {key}", found[key] == wanted, wanted, found[key])
        for key, wanted in expect.model_dump(exclude_none=True).items()
    ]


def _rest(expect: RestExpectation, result: ReplayResult) -> list[Check]:
    """What the server asked of Twilio's (faked) REST API."""
    requests = result.outcome.get("rest_requests", [])
    caller_path = f"/Calls/{result.call_sid}.json"
    updates = [r for r in requests if r["method"] == "POST" and r["path"].endswith(caller_path)]
    other_legs = [
        r
        for r in requests
        if r["method"] == "POST"
        and "/Calls/" in r["path"]
        and r not in updates
        and not r["path"].endswith("/Calls.json")
    ]
    found = {
        "moved_live_call": result.outcome.get("moved_by") == "rest",
        "ended_caller_call": any(r["form"].get("Status") in ("completed", "canceled") for r in updates),
        "cancelled_agent_leg": any(r["form"].get("Status") in ("completed", "canceled") for r in other_legs),
        "failed_updates": len([r for r in updates if "Twiml" in r["form"]])
        - (1 if result.outcome.get("moved_by") else 0),
    }
    return [
        Check(f"REST {key}", found[key] == wanted, wanted, found[key])
        for key, wanted in expect.model_dump(exclude_none=True).items()
    ]
