from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.users import users_pb2

CALLBACK = "https://app.example.test/auth/callback/"
AFTER_LOGOUT = "https://app.example.test/"


@pytest.fixture
def org_and_user(sdk):
    """An organization with one member (an admin), created through the SDK."""
    org = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme-1")
    )[0].organization
    user = sdk.users.create_user_and_membership(
        org.id,
        users_pb2.CreateUser(
            email="ada@acme.example",
            external_id="legacy-42",
            user_profile=users_pb2.CreateUserProfile(given_name="Ada", family_name="Lovelace"),
            membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name="admin")]),
        ),
        send_invitation_email=False,
    )[0].user
    return org, user


@pytest.fixture
def registered(fresh_emulator):
    fresh_emulator.control.register_uris([CALLBACK], [AFTER_LOGOUT])
    return fresh_emulator


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver() -> Iterator[HTTPServer]:
    """A local webhook endpoint; ``receiver.received`` lists (lower-cased headers, body)."""
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def wait_for(condition, timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
