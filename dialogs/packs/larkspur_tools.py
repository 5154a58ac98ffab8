"""Larkspur Health's tools, over the pack's bundled data set: order lookup, password reset, appointments.

The pack (`larkspur.yaml`) names these tools and this toolbox (`toolbox: dialogs.packs.larkspur_tools:LarkspurTools`).
A tool never invents anything: it reports what the data says, or not found.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path

from dialogs.tools import Data
from dialogs.wording import last_digits


def _status_sentence(order: Data) -> str:
    status = order["status"]
    if status == "shipped":
        return f"shipped on {order['shipped_on']}, and should arrive {order['eta']}."
    if status == "processing":
        return f"is being packed, and should ship by {order['eta']}."
    if status == "delivered":
        return f"was delivered on {order['delivered_on']}."
    return f"is {status}."


class LarkspurTools:
    """The tools of the Larkspur pack, reading a copy of its JSON data (changes stay in this process)."""

    def __init__(self, data_path: Path | None = None) -> None:
        if data_path is None:
            text = files("dialogs.packs").joinpath("larkspur_data.json").read_text(encoding="utf-8")
        else:
            text = data_path.read_text(encoding="utf-8")
        self.data: Data = copy.deepcopy(json.loads(text))
        self.outbox: list[Data] = []  # texts that would be sent to callers
        self._tools: dict[str, Callable[[Mapping[str, object]], Data]] = {
            "lookup_order": self.lookup_order,
            "send_reset_link": self.send_reset_link,
            "find_appointment": self.find_appointment,
            "find_slots": self.find_slots,
            "reschedule_appointment": self.reschedule_appointment,
            "customer_profile": self.customer_profile,
        }

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._tools)

    def run(self, tool: str, arguments: Mapping[str, object]) -> tuple[bool, Data]:
        handler = self._tools.get(tool)
        if handler is None:
            return False, {"error": f"no tool named {tool!r}"}
        try:
            return True, handler(arguments)
        except (KeyError, TypeError, ValueError) as exc:
            return False, {"error": f"{tool} failed: {exc}"}

    def customer_profile(self, args: Mapping[str, object]) -> Data:
        """The caller's tier, for routing (gold members may go to a priority desk)."""
        account = self.data["accounts"].get(str(args.get("phone") or ""))
        if account is None:
            return {"found": False}
        return {"found": True, "tier": account.get("tier", "standard")}

    def lookup_order(self, args: Mapping[str, object]) -> Data:
        number = str(args["order_number"])
        order = self.data["orders"].get(number)
        if order is None:
            return {"found": False, "order_number": number}
        return {"found": True, "order_number": number, "status_sentence": _status_sentence(order), **order}

    def send_reset_link(self, args: Mapping[str, object]) -> Data:
        phone = str(args.get("phone") or "")
        account = self.data["accounts"].get(phone)
        if account is None:
            return {"found": False}
        self.outbox.append({"to": phone, "kind": "password_reset"})
        return {"found": True, "last_digits": last_digits(phone), "portal_user": account["portal_user"]}

    def find_appointment(self, args: Mapping[str, object]) -> Data:
        phone = str(args.get("phone") or "")
        appointment = self.data["appointments"].get(phone)
        if appointment is None:
            return {"found": False}
        return {"found": True, **appointment}

    def find_slots(self, args: Mapping[str, object]) -> Data:
        return {"found": True, "slots": list(self.data["open_slots"])}

    def reschedule_appointment(self, args: Mapping[str, object]) -> Data:
        phone, slot = str(args["phone"]), str(args["slot"])
        if slot not in self.data["open_slots"]:
            return {"found": False, "slot": slot}
        appointment = self.data["appointments"][phone]
        self.data["open_slots"].remove(slot)
        self.data["open_slots"].append(appointment["when"])
        appointment["when"] = slot
        return {"found": True, "slot": slot, "id": appointment["id"]}
