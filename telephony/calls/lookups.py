"""The dialog's questions to the outside world, answered off the event loop: tools, and where a handoff can go.

Both are I/O (a data set, Twilio's TaskRouter), so they run in the call's executor; both always answer the
dialog, a failure included, so a broken tool or availability check never strands the caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from dialogs.actions import CallTool, Route
from dialogs.events import Routed, ToolResult
from dialogs.routing import QueueAvailability, RoutingDecision, ScheduleAvailability
from telephony.calls.ports import SessionDeps

log = logging.getLogger(__name__)


async def run_tool(deps: SessionDeps, call_sid: str, call: CallTool, t_ms: int) -> ToolResult:
    """Run a tool off the event loop; a failing tool is a result too (the dialog hands off)."""
    if deps.tools is None:
        return ToolResult(call.call_id, call.tool, False, {"error": "no tools are configured"}, t_ms)
    loop = asyncio.get_running_loop()
    try:
        ok, data = await loop.run_in_executor(deps.executor, deps.tools.run, call.tool, dict(call.arguments))
    except Exception as exc:  # a broken tool is reported to the dialog, which hands off
        log.exception("tool %s failed on call %s", call.tool, call_sid)
        ok, data = False, {"error": f"{type(exc).__name__}: {exc}"}
    return ToolResult(call_id=call.call_id, tool=call.tool, ok=ok, data=data, t_ms=t_ms)


async def route(deps: SessionDeps, call_sid: str, request: Route, t_ms: int) -> Routed:
    """Ask the router (and availability, which may be I/O) where the handoff can go."""
    package = request.package
    if deps.router is None:
        return Routed(RoutingDecision(queue=package.recommended_queue, mode="transfer"), t_ms)
    meta = request.metadata
    found = False
    if meta.tier is None and package.caller:
        tier, found = await _profile(deps, call_sid, package.caller)
        meta = dataclasses.replace(meta, tier=tier)
    loop = asyncio.get_running_loop()
    availability = deps.availability or ScheduleAvailability()
    try:
        decision = await loop.run_in_executor(
            deps.executor, deps.router.route, package, meta, deps.clock(), availability
        )
    except Exception as exc:  # an availability check that fails must not strand the caller
        log.exception("routing failed on call %s; taking a callback", call_sid)
        decision = RoutingDecision(
            queue=package.recommended_queue,
            mode="callback",
            reasons=(f"routing failed ({type(exc).__name__}); callback instead",),
            availability=QueueAvailability(open=False, source="none", detail="routing failed"),
        )
    return Routed(decision, t_ms, caller_id_matched=found)


async def _profile(deps: SessionDeps, call_sid: str, caller: str) -> tuple[str | None, bool]:
    """The caller's tier from the pack's profile tool (None when it cannot say), and whether their profile was
    found by caller ID at all."""
    profile_tool = deps.caller_profile
    if profile_tool is None or deps.tools is None:
        return None, False
    loop = asyncio.get_running_loop()
    try:
        ok, profile = await loop.run_in_executor(deps.executor, deps.tools.run, profile_tool.tool, {"phone": caller})
    except Exception:  # no profile is no tier; routing goes on without it
        log.warning("caller profile lookup failed on call %s", call_sid)
        return None, False
    found = bool(ok and profile.get("found"))
    tier = profile.get(profile_tool.tier_field) if found else None
    return (str(tier) if tier is not None else None), found
