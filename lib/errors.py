"""Errors the services raise and the HTTP layer turns into JSON arrays of error codes."""
from __future__ import annotations


class ApiError(Exception):
    """A client-visible error: an HTTP status and machine-readable codes."""

    status = 400

    def __init__(self, *codes: str, status: int | None = None, detail: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(", ".join(codes))
        self.codes = list(codes)
        if status is not None:
            self.status = status
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Unprocessable(ApiError):
    status = 422


class Unavailable(ApiError):
    status = 503
