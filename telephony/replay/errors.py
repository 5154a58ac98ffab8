"""Errors of the tester's Twilio: a scenario file that cannot be used, a replay that could not finish."""

from __future__ import annotations

from telephony import TelephonyError


class ScenarioError(TelephonyError):
    """A scenario file that does not validate; the message names the file and the field path."""


class ReplayError(TelephonyError):
    """The replay harness could not play Twilio's part to the end."""
