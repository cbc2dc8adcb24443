"""The emulator itself: wires the directory, the authorization server, the gRPC and HTTP servers
and the TLS router, and starts or stops them together.

    with Emulator(port=0).start() as emulator:
        ScalekitClient(emulator.url, emulator.client_id, emulator.client_secret)

The caller must make the SDK trust ``emulator.ca_path`` (``scalekit_auth.client.trust_ca_bundle``
does it) before the first ``ScalekitClient`` of the process is built. Emulators without a
``state_dir`` share one CA per process (``tls.process_certificates``), so that stays true for
every later one; one with its own ``state_dir`` has its own CA.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from .authserver import AuthServer, Session, check_uris
from .control import ControlAPI, ControlClient
from .directory import Directory, Event
from .faults import Faults
from .interceptors import EmulatorInterceptor
from .persistence import SqlitePersistence
from .router import Backends, TLSRouter
from .services import add_services
from .signing import KeySet
from .tls import ensure_certificates, names_for_host, process_certificates
from .web import HTTPServer
from .webhooks import WebhookSender, new_secret, secret_key

DEFAULT_CLIENT_ID = "skc_00000000000000001"
DEFAULT_CLIENT_SECRET = "emulator-secret-not-for-production"  # noqa: S105 (a local stand-in)

# Keepalive options matching what the real service permits (wire doc 1.5): without them a
# default grpcio server answers the SDK's idle pings with GOAWAY "too_many_pings".
GRPC_SERVER_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_connection_idle_ms", 300_000),
]


class Emulator:
    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 0,
        state_dir: str | Path | None = None,
        persist: bool = False,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        control_token: str = "",
        grpc_workers: int = 32,
        redirect_uris: Sequence[str] = (),
        post_logout_redirect_uris: Sequence[str] = (),
        initiate_login_uri: str | None = None,
        webhook_url: str = "",
        webhook_secret: str = "",
    ) -> None:
        """The URIs and webhook options are the emulator's configuration (the management
        command's flags): applied on start and again by every ``reset()``. Raises
        ``ValueError`` for a URI, webhook secret or host that could not be used. Without
        ``webhook_secret``, a ``webhook_url`` gets a generated one (``webhook_secret``)."""
        check_uris([*redirect_uris, *post_logout_redirect_uris])
        if initiate_login_uri:
            check_uris([initiate_login_uri])
        if webhook_url:
            webhook_secret = webhook_secret or new_secret()
            secret_key(webhook_secret)
        self.redirect_uris = list(redirect_uris)
        self.post_logout_redirect_uris = list(post_logout_redirect_uris)
        self.initiate_login_uri = initiate_login_uri
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.host = host
        self.requested_port = port
        self._temp_dir = None if state_dir else tempfile.mkdtemp(prefix="scalekit-emulator-")
        self.state_dir = Path(state_dir or self._temp_dir)
        self.client_id = client_id
        self.client_secret = client_secret
        self.grpc_workers = grpc_workers
        # Without a state directory, the process's one CA: grpc-core trusts only the first
        # roots file it read, so a second emulator with a new CA would be unreachable. The
        # server certificate must name the host clients reach it by (see names_for_host).
        names = names_for_host(host)
        self.certificates = (
            ensure_certificates(self.state_dir, names) if state_dir else process_certificates(names)
        )
        self.persistence = (
            SqlitePersistence(self.state_dir / "emulator.sqlite3") if persist else None
        )
        self.faults = Faults()
        self.keys = KeySet(self.persistence)
        self.directory = Directory(self.persistence)
        self.webhooks = WebhookSender()
        self.directory.subscribe(self._on_directory_event)
        self.control_api = ControlAPI(self, control_token)
        self.control_token = control_token
        self.port = 0
        self.auth: AuthServer  # built in start(), when the URL (the token issuer) is known
        self._grpc: grpc.Server | None = None
        self._http: HTTPServer | None = None
        self._router: TLSRouter | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.certificates.ca_path

    def start(self) -> Emulator:
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self.grpc_workers, thread_name_prefix="emulator-grpc"
            ),
            interceptors=[EmulatorInterceptor(self)],
            options=GRPC_SERVER_OPTIONS,
        )
        add_services(self._grpc, self.directory)
        grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self._http = HTTPServer(("127.0.0.1", 0), self)
        threading.Thread(target=self._http.serve_forever, name="emulator-http", daemon=True).start()
        self._router = TLSRouter(
            # Server preference: a browser offering both gets HTTP/1.1 (the hosted login page);
            # grpc-core offers only h2 and gets the gRPC backend.
            self.certificates.server_context(["http/1.1", "h2"]),
            Backends(grpc_port=grpc_port, http_port=self._http.server_address[1]),
        )
        self.port = self._router.start(self.host, self.requested_port)
        self.auth = AuthServer(
            issuer=self.url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            directory=self.directory,
            keys=self.keys,
            persistence=self.persistence,
        )
        self._apply_configuration()
        self.webhooks.start()
        self.control = ControlClient(self.url, self.ca_path, self.control_token)
        return self

    def stop(self) -> None:
        if self._router is not None:
            self._router.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace=0.2).wait()
        self.webhooks.stop()
        if self.persistence is not None:
            self.persistence.close()
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self if self.port else self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to a fresh environment; the signing key and the certificates are kept, and the
        configuration given to the constructor (redirect URIs, webhook endpoint and secret) is
        applied again, so a demo started with them keeps working."""
        self.directory.reset()
        self.auth.reset()
        self.keys.reset()
        self.faults.clear()
        self.faults.reset_counters()
        self.webhooks.reset()
        self._apply_configuration()

    def _apply_configuration(self) -> None:
        self.auth.register_uris(
            self.redirect_uris, self.post_logout_redirect_uris, self.initiate_login_uri
        )
        if self.webhook_url:
            self.webhooks.configure(self.webhook_url, self.webhook_secret)

    def banner(self) -> str:
        """The one line printed on start: what a client needs, as environment assignments
        (and the webhook secret a receiver verifies with, when webhooks are configured)."""
        line = (
            f"SCALEKIT_ENVIRONMENT_URL={self.url} SCALEKIT_CLIENT_ID={self.client_id} "
            f"SCALEKIT_CLIENT_SECRET={self.client_secret} SCALEKIT_CA_BUNDLE={self.ca_path}"
        )
        if self.webhook_url:
            line += f" SCALEKIT_WEBHOOK_SECRET={self.webhook_secret}"
        return line

    # -- webhook events --------------------------------------------------------------------

    def _on_directory_event(self, event: Event) -> None:
        self.webhooks.emit(event.type, event.object_type, event.organization_id, event.data)

    def emit_user_event(self, event_type: str, session: Session) -> None:
        user = self.directory.get_user(session.user_id)
        if user is None:
            return
        data = {
            "user": MessageToDict(user, preserving_proto_field_name=True),
            "session_id": session.sid,
        }
        self.webhooks.emit(event_type, "User", session.organization_id, data)

    def emit_logout(self, sid: str) -> None:
        session = self.auth.find_session(sid)
        if session is not None:
            self.emit_user_event("user.logout", session)
