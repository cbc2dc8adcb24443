"""One TLS port for both protocols, as the real environment URL serves them.

The SDK reaches ``https://host:port`` with ``requests`` (HTTP/1.1, for ``/oauth/token`` and
``/keys``) and with ``grpc.secure_channel("host:port")`` (HTTP/2). After the TLS handshake this
router looks at the ALPN protocol the client negotiated: ``h2`` is piped to the plaintext gRPC
server, anything else to the plaintext HTTP server, both on loopback-only ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from dataclasses import dataclass

logger = logging.getLogger("scalekit_auth.emulator")

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Backends:
    grpc_port: int
    http_port: int


class TLSRouter:
    def __init__(self, context: ssl.SSLContext, backends: Backends) -> None:
        self.context = context
        self.backends = backends
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (``localhost`` binds IPv4 and, when available, IPv6)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            try:
                sockets = _bind(host, port)
                self._servers = [
                    await asyncio.start_server(
                        self._handle, sock=sock, ssl=self.context, ssl_handshake_timeout=10
                    )
                    for sock in sockets
                ]
                self.port = sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
            finally:
                ready.set()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(serve())
            if not failure:
                self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="emulator-tls-router", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.port

    def stop(self) -> None:
        """Close the listeners and every open connection, then end the loop's thread."""

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=5)
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
        port = self.backends.grpc_port if protocol == "h2" else self.backends.http_port
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            logger.exception("emulator: backend on port %s refused the connection", port)
            writer.close()
            return
        upstream_writer.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        pipes = asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        try:
            await pipes
        except asyncio.CancelledError:
            # Shutting down: end this connection quietly (asyncio's stream callback logs a
            # handler task that ends cancelled).
            pipes.cancel()
            writer.close()
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()


def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for ``host``: ``localhost`` gets 127.0.0.1 and ::1 on the same port."""
    addresses = ["127.0.0.1", "::1"] if host == "localhost" else [host]
    sockets: list[socket.socket] = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((address, port or (sockets[0].getsockname()[1] if sockets else 0)))
        except OSError:
            sock.close()
            if not sockets:
                raise
            continue  # no IPv6 on this machine: IPv4 alone is enough
        sock.listen(256)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets
