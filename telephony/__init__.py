"""The telephony layer: Twilio, live calls, what happens after a handoff, storage, the server, and replays.

One subpackage per job (see docs/ARCHITECTURE.md): ``twilio`` (Twilio's formats and API), ``calls`` (one live
call), ``desk`` (everything after the decision), ``store`` (persistence), ``server`` (the FastAPI app), and
``replay`` (the tester's Twilio). The root holds only the layer's base error.

Errors, one hierarchy for the layer::

    TelephonyError
    ├── twilio.errors.TransferError     a transfer failed; ``retryable`` says whether trying again makes sense
    │   └── twilio.rest.TwilioApiError  with Twilio's HTTP status and error code
    ├── twilio.protocol.MediaStreamError an outbound media-stream message cannot be built
    ├── store.errors.StoreError          a read or write that did not happen; ``retryable`` too
    └── replay.errors.ScenarioError / ReplayError   a scenario file, or a replay that could not finish

Protocol problems on the media stream are not raised: ``MediaStreamProtocol.receive`` returns a
``ProtocolError`` event instead, so one bad message never ends a call.
"""

from __future__ import annotations


class TelephonyError(Exception):
    """Base of every error the telephony layer raises."""
