"""Stream tickets: only the stream opened with the ticket our voice webhook issued may speak for a call."""

from __future__ import annotations

import pytest

from telephony.calls.admission import StreamTickets, ticket_secret

NOW = 1_700_000_000.0


def tickets(clock: list[float] | None = None) -> StreamTickets:
    when = clock or [NOW]
    return StreamTickets(b"k" * 32, ttl_s=300, clock=lambda: when[0])


def test_the_ticket_issued_for_a_call_admits_its_stream_once() -> None:
    desk = tickets()
    ticket = desk.issue("CA1")
    assert desk.admit("CA1", ticket).admitted
    second = desk.admit("CA1", ticket)  # a captured upgrade replayed
    assert not second.admitted and "used before" in second.why


@pytest.mark.parametrize(
    ("call_sid", "ticket", "why"),
    [
        ("CA1", None, "no stream ticket"),
        ("CA1", "", "no stream ticket"),
        ("CA1", "garbage", "malformed"),
        ("CA1", "1.2.3.4", "malformed"),
        ("CA2", "OTHER", "not this call's"),  # a live call's SID with another call's ticket
    ],
)
def test_missing_malformed_or_foreign_tickets_are_refused(call_sid: str, ticket: str | None, why: str) -> None:
    desk = tickets()
    if ticket == "OTHER":
        ticket = desk.issue("CA1")
    admission = desk.admit(call_sid, ticket)
    assert not admission.admitted and why in admission.why


def test_a_tampered_ticket_is_refused() -> None:
    desk = tickets()
    expires, nonce, mac = desk.issue("CA1").split(".")
    later = str(int(expires) + 10_000)  # stretched lifetime
    assert not desk.admit("CA1", f"{later}.{nonce}.{mac}").admitted
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert not desk.admit("CA1", f"{expires}.{nonce}.{flipped}").admitted


def test_an_expired_ticket_is_refused() -> None:
    clock = [NOW]
    desk = tickets(clock)
    ticket = desk.issue("CA1")
    clock[0] = NOW + 301
    admission = desk.admit("CA1", ticket)
    assert not admission.admitted and "expired" in admission.why


def test_tickets_of_another_server_secret_are_refused() -> None:
    ours, theirs = StreamTickets(ticket_secret("token-a")), StreamTickets(ticket_secret("token-b"))
    assert not ours.admit("CA1", theirs.issue("CA1")).admitted
    assert StreamTickets(ticket_secret("token-a")).admit("CA1", ours.issue("CA1")).admitted  # every node agrees
