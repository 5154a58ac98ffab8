"""The optional callback dialer: places due callbacks through the REST API, agent first, then the caller.

The agent answers and hears the summary (press 1 to go on); only then is the caller dialled, with Twilio's
answering-machine detection on the caller leg. A person is bridged to the agent; a machine gets a short
message and the agent is not connected to it. A callback that does not reach the caller goes back to
"requested" with a note, to be tried again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from urllib.parse import urlencode

from dialogs.pack import BotPack
from dialogs.package import HandoffPackage
from dialogs.summary import whisper
from telephony.store import Store
from telephony.twilio import twiml
from telephony.twilio.errors import TransferError
from telephony.twilio.rest import TwilioRest

log = logging.getLogger(__name__)


class CallbackDialer:
    """Turns stored callback requests into calls."""

    def __init__(
        self,
        store: Store,
        rest: TwilioRest,
        base_url: str,
        *,
        caller_id: str,
        default_agent: str,
        pack: BotPack,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.rest = rest
        self.base_url = base_url.rstrip("/")
        self.caller_id = caller_id
        self.default_agent = default_agent
        self.pack = pack
        self.queues = {q.name: q for q in pack.queues}
        self.clock = clock
        self.retry_after_s = 900  # the caller was not reached: try again this much later
        self.redial_after_s = 60  # Twilio refused the call: try again this much later

    def url(self, path: str, callback_id: int) -> str:
        return f"{self.base_url}{path}?{urlencode({'callback': callback_id})}"

    async def run_once(self) -> int:
        """Dial every due callback's agent (in-process mode); returns how many calls were placed."""
        due = await asyncio.to_thread(self.store.due_callbacks, self.clock())
        return sum([await self.dial(int(str(callback["id"]))) for callback in due])

    async def dial(self, callback_id: int) -> bool:
        """Ring the agent for one callback, if it is still waiting (claimed in the store first, so two workers
        never both dial it); True when the call was placed. A failed dial waits and is tried again."""
        callback = await asyncio.to_thread(self.store.claim_callback, callback_id, "calling the agent")
        if callback is None:
            return False
        agent = await asyncio.to_thread(self._agent_for, callback)
        try:
            await asyncio.to_thread(
                self.rest.create_call,
                agent,
                self.caller_id,
                self.url("/twilio/callback/agent", callback_id),
                status_callback=self.url("/twilio/callback/agent-status", callback_id),
            )
        except TransferError as exc:
            log.warning("could not place callback %s: %s", callback_id, exc)
            retry_at = self.clock() + timedelta(seconds=self.redial_after_s)
            await asyncio.to_thread(self.store.retry_callback, callback_id, retry_at, f"dial failed: {exc}")
            return False
        return True

    async def run_forever(self, every_s: float = 30.0) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # one bad round must not stop the dialer
                log.exception("callback dialer round failed")
            await asyncio.sleep(every_s)

    def _agent_for(self, callback: Mapping[str, object]) -> str:
        handoff = self.store.get_handoff(str(callback.get("handoff_id") or "")) if callback.get("handoff_id") else None
        queue = self.queues.get(str(handoff.get("queue"))) if handoff else None
        phones = [t.number for t in (queue.targets if queue else []) if t.kind == "phone" and t.number]
        return phones[0] if phones else self.default_agent

    # --- TwiML for the two legs ------------------------------------------------------------------------------

    def package_of(self, callback: Mapping[str, object]) -> HandoffPackage | None:
        handoff = self.store.get_handoff(str(callback.get("handoff_id") or "")) if callback.get("handoff_id") else None
        return HandoffPackage.model_validate(handoff["package"]) if handoff else None

    def agent_twiml(self, callback_id: int) -> str:
        """The agent answered: the summary, then press 1 to call the customer."""
        words = self.pack.agent
        callback = self._callback(callback_id)
        if callback is None:
            return twiml.say_and_hang_up(words.callback_not_needed, self.pack.say_language)
        package = self.package_of(callback)
        briefing = f"{words.callback_intro} {whisper(package, words) if package else words.no_summary}"
        url = self.url("/twilio/callback/agent-accept", callback_id)
        return twiml.gather_key([briefing, words.callback_press_one], url, language=self.pack.say_language)

    def agent_accept_twiml(self, callback_id: int, digits: str) -> str:
        """1: dial the customer with answering-machine detection; anything else: not now."""
        callback = self._callback(callback_id)
        if callback is None or digits != "1":
            return twiml.hang_up()
        return twiml.dial_with_detection(
            str(callback["number"]),
            answer_url=self.url("/twilio/callback/customer", callback_id),
            action_url=self.url("/twilio/callback/result", callback_id),
            caller_id=self.caller_id,
            timeout_s=25,
            say_first=self.pack.agent.calling_customer,
        )

    def customer_twiml(self, callback_id: int, answered_by: str) -> str:
        """The customer leg answered: a machine gets a short message, a person is bridged (empty response)."""
        self.store.callback_answered(callback_id, answered_by)  # the result may reach another instance
        if answered_by.startswith("machine") or answered_by == "fax":
            message = self.pack.after_stream.machine_message.format(company=self.pack.company)
            return twiml.say_and_hang_up(message, self.pack.say_language)
        return twiml.bridge()

    async def result(self, callback_id: int, dial_status: str) -> str:
        """After the customer leg: done when a person was reached, else back to requested (tried again)."""
        callback = await asyncio.to_thread(self._callback, callback_id)
        answered_by = str((callback or {}).get("answered_by") or "")
        if dial_status == "completed" and not answered_by.startswith(("machine", "fax")):
            await asyncio.to_thread(self.store.mark_callback, callback_id, "done", "reached the customer")
        else:
            note = f"not reached ({answered_by or dial_status}); will try again"
            retry_at = self.clock() + timedelta(seconds=self.retry_after_s)
            await asyncio.to_thread(self.store.retry_callback, callback_id, retry_at, note)
        return twiml.hang_up()

    def _callback(self, callback_id: int) -> Mapping[str, object] | None:
        return self.store.get_callback(callback_id)
