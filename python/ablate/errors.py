"""Exceptions raised by the client: one class per gRPC status a caller may want to catch, each
carrying the coordinator's own message (which names what to fix, as "sweep.grid.optimizer:
unknown optimizer 'adamx'")."""

from __future__ import annotations

import grpc


class AblateError(Exception):
    """The coordinator refused a call or could not be reached.

    Attributes:
        code: the gRPC status code.
        message: the coordinator's message (or gRPC's, when the call never reached it).
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidArgument(AblateError):
    """A bad sweep file, id or argument."""


class NotFound(AblateError):
    """No sweep or job has that id."""


class AlreadyExists(AblateError):
    """The thing to create exists already."""


class FailedPrecondition(AblateError):
    """The call does not fit the current state (as cancelling an ended job)."""


class Unauthenticated(AblateError):
    """No token, or one the coordinator does not know, or one the client cannot send (named
    before any call): pass token= or token_file=, or set ABLATE_TOKEN_FILE or ABLATE_TOKEN."""


class PermissionDenied(AblateError):
    """The token's role may not make this call (a viewer submitting, say)."""


class Unavailable(AblateError):
    """The coordinator cannot be reached at that address."""


class DeadlineExceeded(AblateError):
    """The call took longer than the client's timeout."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_rpc_error(error: grpc.RpcError) -> AblateError:
    """The exception for a failed call: the class of its status code, with its message."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    return _BY_CODE.get(code, AblateError)(code, message or code.name)
