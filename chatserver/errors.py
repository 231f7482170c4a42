"""The one exception services raise; the WebSocket and HTTP layers translate it."""

from __future__ import annotations

from client_proto.errors import ErrorCode

# HTTP status for each error code (docs/protocol.md §7). `gone` exists only over HTTP.
HTTP_STATUS = {
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.INVALID: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    "gone": 410,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNKNOWN_OP: 400,
}


class ServiceError(Exception):
    """A request that cannot be done, with the protocol's code and a message a person can act on.

    `retry_after` is in milliseconds (only with `rate_limited`).
    """

    def __init__(self, code: ErrorCode | str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def forbidden(message: str = "you may not do that here") -> ServiceError:
    return ServiceError(ErrorCode.FORBIDDEN, message)


def not_found(what: str) -> ServiceError:
    return ServiceError(ErrorCode.NOT_FOUND, f"no such {what}")


def invalid(message: str) -> ServiceError:
    return ServiceError(ErrorCode.INVALID, message)


def conflict(message: str) -> ServiceError:
    return ServiceError(ErrorCode.CONFLICT, message)


def unavailable(message: str = "storage is unavailable; try again shortly") -> ServiceError:
    return ServiceError(ErrorCode.UNAVAILABLE, message)


def files_refused(refused) -> ServiceError:
    """`storage.files.FilesRefused` as an error: unknown files are `not_found`, others' `forbidden`."""
    if refused.missing:
        return not_found(f"file {refused.missing[0]} (files)")
    return forbidden(f"files: {refused.foreign[0]} is not one of your uploads")


def too_large(message: str) -> ServiceError:
    return ServiceError(ErrorCode.TOO_LARGE, message)
