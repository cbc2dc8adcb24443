"""``manage.py scalekit_emulator``: run the local Scalekit emulator until interrupted."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator


def default_state_dir() -> Path:
    """``<BASE_DIR>/var/emulator``; relative to the working directory for a project whose
    settings have no ``BASE_DIR`` (it is a ``startproject`` habit, not a Django setting)."""
    base = getattr(settings, "BASE_DIR", None)
    return Path(base if base is not None else Path.cwd()) / "var" / "emulator"


class Command(BaseCommand):
    # The emulator stands in for Scalekit; the project's checks (Scalekit credentials among
    # them) are about its clients, which are configured from this command's output.
    requires_system_checks: list[str] = []
    help = (
        "Run a local Scalekit emulator (HTTPS + gRPC over TLS on one port) that the real "
        "scalekit-sdk-python talks to. Prints one line with the environment URL, client id, "
        "client secret and CA bundle to trust."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--host",
            default="localhost",
            help="host to bind and advertise (default localhost); the server certificate names "
            "it too, and for 0.0.0.0 or :: also this machine's hostname",
        )
        parser.add_argument(
            "--port", type=int, default=8443, help="port (0 picks a free one; default 8443)"
        )
        parser.add_argument(
            "--state-dir",
            default=None,
            help="where the CA, certificates and (with --persist) the SQLite state live "
            "(default <BASE_DIR>/var/emulator, or ./var/emulator without a BASE_DIR setting)",
        )
        parser.add_argument(
            "--persist", action="store_true", help="keep the state in <state-dir>/emulator.sqlite3"
        )
        parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
        parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
        parser.add_argument(
            "--control-token", default="", help="require this bearer token on /_emulator/"
        )
        parser.add_argument(
            "--redirect-uri",
            action="append",
            default=[],
            help="register a redirect URI (repeatable)",
        )
        parser.add_argument(
            "--post-logout-redirect-uri",
            action="append",
            default=[],
            help="register a post-logout redirect URI (repeatable)",
        )
        parser.add_argument(
            "--initiate-login-uri", default=None, help="the app's IdP-initiated login URL"
        )
        parser.add_argument("--webhook-url", default="", help="deliver webhook events to this URL")
        parser.add_argument(
            "--webhook-secret",
            default="",
            help="whsec_... secret to sign webhooks with (generated and printed when omitted)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            emulator = Emulator(
                host=options["host"],
                port=options["port"],
                state_dir=options["state_dir"] or default_state_dir(),
                persist=options["persist"],
                client_id=options["client_id"],
                client_secret=options["client_secret"],
                control_token=options["control_token"],
                redirect_uris=options["redirect_uri"],
                post_logout_redirect_uris=options["post_logout_redirect_uri"],
                initiate_login_uri=options["initiate_login_uri"],
                webhook_url=options["webhook_url"],
                webhook_secret=options["webhook_secret"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # Before the banner: a caller may SIGTERM as soon as it has read it.
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            emulator.start()
        except OSError as exc:
            emulator.stop()
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from exc
        banner = emulator.banner()
        self.stdout.write(banner)
        self.stdout.flush()
        stop.wait()
        emulator.stop()
