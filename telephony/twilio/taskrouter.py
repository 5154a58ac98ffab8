"""Queue availability from TaskRouter: who is free right now, read through the twilio library.

Hours still come first: a queue outside its hours is closed whatever TaskRouter says. When TaskRouter cannot
be reached, the schedule decides, and the routing reasons say so.
"""

from __future__ import annotations

import logging
from datetime import datetime

from dialogs.routing import QueueAvailability, QueueConfig, ScheduleAvailability
from telephony.twilio.errors import TransferError
from telephony.twilio.rest import TwilioRest

log = logging.getLogger(__name__)


class TaskRouterAvailability:
    """Implements `dialogs.routing.Availability` with a workspace's real-time queue statistics."""

    def __init__(self, rest: TwilioRest, workspace_sid: str) -> None:
        self.rest = rest
        self.workspace_sid = workspace_sid
        self.schedule = ScheduleAvailability()

    def check(self, queue: QueueConfig, now: datetime) -> QueueAvailability:
        by_hours = self.schedule.check(queue, now)
        if not by_hours.open or queue.task_queue_sid is None:
            return by_hours
        try:
            stats = self.rest.queue_statistics(self.workspace_sid, queue.task_queue_sid)
        except TransferError as exc:
            log.warning("TaskRouter statistics for %s unavailable (%s); using the schedule", queue.name, exc)
            return QueueAvailability(
                open=True,
                expected_wait_s=queue.typical_wait_s,
                source="schedule",
                detail=f"within opening hours; TaskRouter unreachable ({exc})",
            )
        per_task = queue.typical_wait_s or 60
        queued_wait = stats.waiting_tasks * per_task // max(stats.available_workers, 1)
        expected = max(stats.longest_wait_s, queued_wait) if stats.waiting_tasks else 0
        return QueueAvailability(
            open=True,
            available_agents=stats.available_workers,
            expected_wait_s=expected,
            source="taskrouter",
            detail=f"{stats.available_workers} agents free, {stats.waiting_tasks} tasks waiting",
        )
