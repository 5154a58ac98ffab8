"""Handoffs: the package comes back as the same strict model, saving again updates instead of duplicating,
status only moves back by an explicit call, and the list filters by status and queue."""

from __future__ import annotations

import pytest

from dialogs.package import HandoffPackage
from telephony.store import Store, StoreError
from tests.telephony.store.conftest import CALL_SID, HANDOFF_ID, ROUTING, make_package


def test_a_package_round_trips_through_the_store(store: Store) -> None:
    package = make_package(primary_issue="Wants to pay with card 4111 1111 1111 1111.")
    store.save_handoff(CALL_SID, package, ROUTING)
    stored = store.get_handoff(HANDOFF_ID)
    assert stored is not None
    assert HandoffPackage.model_validate(stored["package"]) == package
    assert "4111 1111 1111 1111" not in str(stored)
    assert (stored["category"], stored["trigger"], stored["urgency"]) == ("risk_compliance", "refund_dispute", "high")
    assert stored["routing"] == ROUTING
    assert store.get_handoff("nope") is None


def test_saving_a_handoff_again_updates_it(store: Store) -> None:
    store.save_handoff(CALL_SID, make_package(), {"queue": "billing_disputes", "reasons": ["first"]})
    store.save_handoff(
        CALL_SID, make_package(urgency="normal"), {"reasons": ["second"], "mode": "callback"}, "callback"
    )
    store.save_handoff(CALL_SID, make_package(urgency="normal"), {})  # a repeat at "pending" moves nothing back
    [handoff] = store.list_handoffs()
    assert handoff["status"] == "callback"
    assert handoff["urgency"] == "normal"
    assert handoff["routing"] == {"queue": "billing_disputes", "reasons": ["second"], "mode": "callback"}


def test_the_routed_queue_wins_over_the_recommended_one(store: Store) -> None:
    store.save_handoff(CALL_SID, make_package(), {"queue": "general"})
    assert store.list_handoffs(queue="general")[0]["handoff_id"] == HANDOFF_ID


def test_status_moves_only_to_known_statuses(store: Store) -> None:
    store.save_handoff(CALL_SID, make_package(), ROUTING)
    assert store.set_handoff_status(HANDOFF_ID, "transferring")
    assert store.set_handoff_status(HANDOFF_ID, "pending")  # explicit, so allowed
    assert not store.set_handoff_status("nope", "bridged")
    with pytest.raises(StoreError, match="unknown handoff status 'lost'"):
        store.set_handoff_status(HANDOFF_ID, "lost")
    with pytest.raises(StoreError, match="unknown handoff status"):
        store.save_handoff(CALL_SID, make_package(), ROUTING, status="done")


def ids(rows: list[dict[str, object]]) -> list[object]:
    return [row["handoff_id"] for row in rows]


def test_list_handoffs_filters_and_puts_the_newest_first(store: Store) -> None:
    for n, (queue, status) in enumerate([("billing", "pending"), ("billing", "bridged"), ("tech", "pending")]):
        call_sid = f"CA{n}"
        store.save_handoff(call_sid, make_package(call_sid, f"h{n}"), {"queue": queue})
        store.set_handoff_status(f"h{n}", status)
    assert ids(store.list_handoffs()) == ["h2", "h1", "h0"]
    assert ids(store.list_handoffs(status="pending")) == ["h2", "h0"]
    assert ids(store.list_handoffs(queue="billing")) == ["h1", "h0"]
    assert ids(store.list_handoffs(status="pending", queue="billing")) == ["h0"]
    assert ids(store.list_handoffs(limit=1)) == ["h2"]
    assert store.list_handoffs(queue="nobody") == []
    with pytest.raises(StoreError, match="limit"):
        store.list_handoffs(limit=0)
