"""Errors the emulator answers with, in the shape the real service uses on the wire.

gRPC errors carry a ``google.rpc.Status`` in ``grpc-status-details-bin`` whose details hold a
``scalekit.v1.errdetails.ErrorInfo`` (the SDK reads ``error_code`` from it). HTTP errors are the
OAuth JSON body ``{"error": ..., "error_description": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status
from scalekit.v1.errdetails import errdetails_pb2


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    constraint: str = ""


@dataclass
class EmulatorError(Exception):
    """An error answered to the client: a gRPC status, a message and Scalekit's error code."""

    code: grpc.StatusCode
    message: str
    error_code: str = ""
    violations: list[FieldViolation] = field(default_factory=list)
    trailers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if not self.error_code:
            self.error_code = self.code.name

    def to_status(self) -> grpc.Status:
        info = errdetails_pb2.ErrorInfo(error_code=self.error_code)
        for violation in self.violations:
            info.validation_error_info.field_violations.add(
                field=violation.field,
                description=violation.description,
                constraint=violation.constraint,
            )
        detail = any_pb2.Any()
        detail.Pack(info)
        status = rpc_status.to_status(
            status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])
        )
        if self.trailers:
            status = _StatusWithTrailers(
                status.code, status.details, tuple(status.trailing_metadata) + self.trailers
            )
        return status

    def abort(self, context: grpc.ServicerContext) -> None:
        """End the RPC with this error (raises, as ``context.abort`` does)."""
        context.abort_with_status(self.to_status())


@dataclass(frozen=True)
class _StatusWithTrailers(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple


def invalid_argument(message: str, violations: list[FieldViolation] | None = None) -> EmulatorError:
    return EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, message, violations=violations or [])


def not_found(message: str) -> EmulatorError:
    return EmulatorError(grpc.StatusCode.NOT_FOUND, message)


def unauthenticated(message: str = "Token empty") -> EmulatorError:
    return EmulatorError(grpc.StatusCode.UNAUTHENTICATED, message)


def rate_limited(retry_after_s: float) -> EmulatorError:
    seconds = max(1, int(retry_after_s + 0.999))
    return EmulatorError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"rate limit exceeded, retry after {seconds}s",
        error_code="RATE_LIMITED",
        trailers=(("retry-after", str(seconds)),),
    )


def unavailable(message: str = "service unavailable (injected fault)") -> EmulatorError:
    return EmulatorError(grpc.StatusCode.UNAVAILABLE, message)
