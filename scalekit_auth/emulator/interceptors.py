"""What every gRPC call goes through before the directory services: counters, the management
token check, and the injected faults (rate limit, latency, UNAVAILABLE)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from . import errors

if TYPE_CHECKING:
    from .server import Emulator


def bearer_token(metadata: tuple[tuple[str, Any], ...]) -> str:
    """The first ``authorization`` value. The SDK sends two: its current token in the per-call
    metadata, then the construction-time token of the channel credentials, which goes stale
    after a re-authentication (wire doc 1.4), so only the first counts."""
    for key, value in metadata:
        if key == "authorization":
            return value[7:] if value.startswith("Bearer ") else ""
    return ""


class EmulatorInterceptor(grpc.ServerInterceptor):
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def intercept_service(self, continuation: Callable, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary
        emulator = self.emulator

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            faults = emulator.faults
            faults.count(method)
            try:
                if not emulator.auth.management_token_valid(
                    bearer_token(context.invocation_metadata())
                ):
                    raise errors.unauthenticated("Token empty or invalid")
                decision = faults.decide(method)
                if decision.retry_after_s is not None:
                    raise errors.rate_limited(decision.retry_after_s)
                if decision.delay_s:
                    time.sleep(decision.delay_s)
                if decision.unavailable:
                    raise errors.unavailable()
                return inner(request, context)
            except errors.EmulatorError as exc:
                exc.abort(context)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
