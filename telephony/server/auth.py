"""Who may use the JSON API: a bearer token, compared in constant time."""

from __future__ import annotations

import hmac


class ApiTokenCheck:
    """Guards /api/*: a bearer token, compared in constant time; an empty token refuses everyone."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    @property
    def configured(self) -> bool:
        return bool(self._token)

    def ok(self, authorization: str | None) -> bool:
        """True when the Authorization header is `Bearer <the token>`."""
        if not self._token or not authorization:
            return False
        scheme, _, given = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)
