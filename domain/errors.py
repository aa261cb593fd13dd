"""The errors the services and adapters raise, by meaning. None of them knows HTTP: the app maps
each kind to a status in one table (app.py), and a route never catches them.

Each carries machine-readable codes (the frontend shows them), an optional human-readable detail,
and for `Unavailable` the seconds after which a retry may succeed.
"""
from __future__ import annotations


class CruddurError(Exception):
    def __init__(self, *codes: str, detail: str | None = None):
        super().__init__(", ".join(codes))
        self.codes = list(codes)
        self.detail = detail


class MalformedRequest(CruddurError):
    """The request itself cannot be read: not JSON, a bad cursor, a bad query parameter."""


class InvalidInput(CruddurError):
    """A well-formed request whose values are refused: a blank message, an unknown recipient form."""


class Unauthenticated(CruddurError):
    """No valid proof of who is calling (a missing, malformed, expired, forged or foreign token)."""


class NotPermitted(CruddurError):
    """The caller is known but may not do this."""


class NotFound(CruddurError):
    """The thing asked for does not exist (or is not shown to this caller)."""


class Conflict(CruddurError):
    """The request clashes with what exists: a handle or an email another user holds."""


class Gone(CruddurError):
    """What was asked for existed and was taken away for good: a retried send of a message its
    sender has deleted since."""


class Unavailable(CruddurError):
    """A service we depend on cannot answer now; the same request may succeed later."""

    def __init__(self, *codes: str, detail: str | None = None, retry_after: int = 1):
        super().__init__(*codes, detail=detail)
        self.retry_after = retry_after


class Busy(Unavailable):
    """Too many requests of this kind are in progress here: the same request may succeed in a
    moment (429, with Retry-After)."""
