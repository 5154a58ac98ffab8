"""The default pack's tools over its bundled data: they report what the data says (or not found), never
invent anything, fail as `(False, error)` rather than raising, and work on a private copy of the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogs.packs.larkspur_tools import LarkspurTools as DataTools
from tests.dialogs.conftest import APPOINTMENT_CALLER, CALLER, LOGIN_CALLER

SLOTS = ["Monday, November 30 at 9 AM", "Tuesday, December 1 at 2:15 PM", "Wednesday, December 2 at 11 AM"]
OLD_TIME = "Thursday, November 26 at 10:30 AM"


@pytest.fixture
def tools() -> DataTools:
    return DataTools()


# --- lookup_order ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "status", "sentence"),
    [
        ("481523", "shipped", "shipped on Monday, November 23, and should arrive Thursday, November 26."),
        ("730018", "processing", "is being packed, and should ship by Monday, November 30."),
        ("559204", "delivered", "was delivered on Friday, November 20."),
    ],
)
def test_lookup_order_finds_an_order_with_a_status_sentence(
    tools: DataTools, number: str, status: str, sentence: str
) -> None:
    ok, data = tools.run("lookup_order", {"order_number": number, "phone": CALLER})
    assert ok
    assert data["found"] is True
    assert data["order_number"] == number
    assert data["status"] == status
    assert data["status_sentence"] == sentence
    assert isinstance(data["total"], float)


def test_lookup_order_reads_the_number_as_text(tools: DataTools) -> None:
    ok, data = tools.run("lookup_order", {"order_number": 481523})
    assert ok and data["found"] and data["order_number"] == "481523"


def test_lookup_order_reports_an_unknown_number_as_not_found(tools: DataTools) -> None:
    assert tools.run("lookup_order", {"order_number": "999999"}) == (True, {"found": False, "order_number": "999999"})


def test_an_unfamiliar_status_is_said_as_it_is(tmp_path: Path) -> None:
    data = {"orders": {"123456": {"status": "on hold", "total": 5.0}}, "accounts": {}, "appointments": {}}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    ok, found = DataTools(path).run("lookup_order", {"order_number": "123456"})
    assert ok and found["status_sentence"] == "is on hold."


# --- send_reset_link ---------------------------------------------------------------------------------------


def test_a_reset_link_is_texted_to_a_known_phone(tools: DataTools) -> None:
    ok, data = tools.run("send_reset_link", {"phone": LOGIN_CALLER})
    assert ok
    assert data == {"found": True, "last_digits": "0 0 0 2", "portal_user": "sortiz"}
    assert tools.outbox == [{"to": LOGIN_CALLER, "kind": "password_reset"}]


@pytest.mark.parametrize("arguments", [{"phone": "+15559999999"}, {"phone": ""}, {}], ids=["unknown", "empty", "none"])
def test_no_reset_link_is_texted_to_an_unknown_phone(tools: DataTools, arguments: dict[str, object]) -> None:
    assert tools.run("send_reset_link", arguments) == (True, {"found": False})
    assert tools.outbox == []


def test_the_outbox_records_only_the_known_phone(tools: DataTools) -> None:
    tools.run("send_reset_link", {"phone": "+15559999999"})
    tools.run("send_reset_link", {"phone": LOGIN_CALLER})
    assert [m["to"] for m in tools.outbox] == [LOGIN_CALLER]


# --- appointments ------------------------------------------------------------------------------------------


def test_find_appointment_finds_the_callers_appointment_by_phone(tools: DataTools) -> None:
    ok, data = tools.run("find_appointment", {"phone": APPOINTMENT_CALLER})
    assert ok
    assert data["found"] is True
    assert (data["id"], data["when"], data["provider"]) == ("A2291", OLD_TIME, "Dr. Patel")
    assert data["insurance"] == "Blue Shield PPO"


def test_find_appointment_reports_none_for_a_phone_without_one(tools: DataTools) -> None:
    assert tools.run("find_appointment", {"phone": CALLER}) == (True, {"found": False})


def test_find_slots_lists_the_open_slots(tools: DataTools) -> None:
    assert tools.run("find_slots", {}) == (True, {"found": True, "slots": SLOTS})


def test_the_slots_returned_are_a_copy(tools: DataTools) -> None:
    _, data = tools.run("find_slots", {})
    data["slots"].clear()
    assert tools.run("find_slots", {})[1]["slots"] == SLOTS


def test_reschedule_moves_the_appointment_and_swaps_the_slot(tools: DataTools) -> None:
    ok, data = tools.run("reschedule_appointment", {"phone": APPOINTMENT_CALLER, "slot": SLOTS[1]})
    assert ok
    assert data == {"found": True, "slot": SLOTS[1], "id": "A2291"}
    assert tools.run("find_appointment", {"phone": APPOINTMENT_CALLER})[1]["when"] == SLOTS[1]
    slots = tools.run("find_slots", {})[1]["slots"]
    assert SLOTS[1] not in slots
    assert OLD_TIME in slots
    assert len(slots) == len(SLOTS)


def test_a_slot_that_is_not_open_is_not_booked(tools: DataTools) -> None:
    ok, data = tools.run("reschedule_appointment", {"phone": APPOINTMENT_CALLER, "slot": "Christmas Day at noon"})
    assert ok and data == {"found": False, "slot": "Christmas Day at noon"}
    assert tools.run("find_appointment", {"phone": APPOINTMENT_CALLER})[1]["when"] == OLD_TIME
    assert tools.run("find_slots", {})[1]["slots"] == SLOTS


def test_rescheduling_for_a_phone_without_an_appointment_fails_and_changes_nothing(tools: DataTools) -> None:
    ok, data = tools.run("reschedule_appointment", {"phone": CALLER, "slot": SLOTS[0]})
    assert not ok
    assert data["error"].startswith("reschedule_appointment failed")
    assert tools.run("find_slots", {})[1]["slots"] == SLOTS


# --- failures and isolation --------------------------------------------------------------------------------


def test_an_unknown_tool_is_a_failure_naming_it(tools: DataTools) -> None:
    assert tools.run("teleport", {}) == (False, {"error": "no tool named 'teleport'"})


def test_a_missing_argument_is_a_failure_not_an_exception(tools: DataTools) -> None:
    ok, data = tools.run("lookup_order", {})
    assert not ok
    assert data["error"].startswith("lookup_order failed")


def test_two_instances_do_not_share_changes() -> None:
    first, second = DataTools(), DataTools()
    first.run("reschedule_appointment", {"phone": APPOINTMENT_CALLER, "slot": SLOTS[0]})
    first.run("send_reset_link", {"phone": LOGIN_CALLER})
    assert second.run("find_appointment", {"phone": APPOINTMENT_CALLER})[1]["when"] == OLD_TIME
    assert second.run("find_slots", {})[1]["slots"] == SLOTS
    assert second.outbox == []
    assert DataTools().run("find_appointment", {"phone": APPOINTMENT_CALLER})[1]["when"] == OLD_TIME


def test_a_data_file_given_by_path_is_not_written_back(tmp_path: Path) -> None:
    data = {
        "accounts": {},
        "orders": {},
        "appointments": {"+1": {"id": "X1", "when": "then", "provider": "Dr. Who"}},
        "open_slots": ["now"],
    }
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    tools = DataTools(path)
    assert tools.run("reschedule_appointment", {"phone": "+1", "slot": "now"})[0]
    assert json.loads(path.read_text(encoding="utf-8")) == data


# --- loading a pack's toolbox --------------------------------------------------------------------------------


def test_the_default_pack_names_a_toolbox_with_every_tool_it_uses() -> None:
    from dialogs.pack import load_pack
    from dialogs.tools import load_toolbox

    pack = load_pack()
    box = load_toolbox(pack.toolbox, pack.source, set(pack.tools))
    assert set(pack.tools) <= box.names


@pytest.mark.parametrize(
    ("spec", "needed", "problem"),
    [
        ("dialogs.nowhere:Tools", set(), "cannot load"),
        ("dialogs.packs.larkspur_tools:Missing", set(), "cannot load"),
        ("dialogs.packs.larkspur_tools:LarkspurTools", {"teleport"}, "has no teleport"),
        (None, {"lookup_order"}, "has no lookup_order"),
    ],
)
def test_a_toolbox_that_cannot_run_the_packs_tools_stops_start_up(
    spec: str | None, needed: set[str], problem: str
) -> None:
    from dialogs.errors import BotPackError
    from dialogs.tools import load_toolbox

    with pytest.raises(BotPackError, match=problem) as info:
        load_toolbox(spec, "pack.yaml", needed)
    assert info.value.file == "pack.yaml"


def test_a_pack_without_tools_gets_a_toolbox_that_refuses_by_name() -> None:
    from dialogs.tools import load_toolbox

    ok, data = load_toolbox(None, "pack.yaml", set()).run("lookup_order", {})
    assert not ok and "lookup_order" in str(data["error"])
