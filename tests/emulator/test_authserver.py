"""The authorization server called directly (no HTTP), where a race must be made deterministic:
a token or code reused while its first exchange is still building its answer."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from scalekit_auth.emulator.authserver import AuthServer, OAuthError
from scalekit_auth.emulator.directory import Directory
from scalekit_auth.emulator.signing import KeySet

from .conftest import CALLBACK
from .directory_factories import CreateOrganizationFactory, CreateUserFactory

CLIENT_ID = "skc_1"
SCOPE = "openid email offline_access"


@pytest.fixture
def auth() -> AuthServer:
    directory = Directory()
    org = directory.create_organization(CreateOrganizationFactory())
    directory.create_user_and_membership(
        org.id, CreateUserFactory(email="ada@acme.example"), send_invitation_email=False
    )
    server = AuthServer(
        issuer="https://localhost:1",
        client_id=CLIENT_ID,
        client_secret="secret",
        directory=directory,
        keys=KeySet(),
    )
    server.register_uris([CALLBACK])
    return server


def new_code(auth: AuthServer) -> str:
    request = auth.validate_authorize(
        {"client_id": CLIENT_ID, "redirect_uri": CALLBACK, "scope": SCOPE}
    )
    _session, location = auth.login(request, "ada@acme.example")
    return parse_qs(urlsplit(location).query)["code"][0]


def exchange_form(code: str) -> dict[str, str]:
    return {"code": code, "redirect_uri": CALLBACK}


class Paused:
    """Holds the first call to ``auth.mint_id_token`` (made outside the lock, after the grant
    was checked) until ``release()``, so a second request can run in that window."""

    def __init__(self, auth: AuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered, self._release = threading.Event(), threading.Event()
        self._first = True
        original = auth.mint_id_token

        def mint(*args, **kwargs):
            if self._first:
                self._first = False
                self.entered.set()
                assert self._release.wait(10)
            return original(*args, **kwargs)

        monkeypatch.setattr(auth, "mint_id_token", mint)

    def run(self, call) -> dict:
        outcome: dict = {}

        def target():
            try:
                outcome["result"] = call()
            except OAuthError as exc:
                outcome["error"] = exc

        self.thread = threading.Thread(target=target)
        self.thread.start()
        assert self.entered.wait(10)
        return outcome

    def release(self) -> None:
        self._release.set()
        self.thread.join(10)


def test_refresh_token_reused_while_its_rotation_is_in_flight_leaves_no_token(auth, monkeypatch):
    first = auth.exchange_code(exchange_form(new_code(auth)))
    paused = Paused(auth, monkeypatch)
    rotation = paused.run(lambda: auth.refresh({"refresh_token": first["refresh_token"]}))

    with pytest.raises(OAuthError, match="already used"):
        auth.refresh({"refresh_token": first["refresh_token"]})
    paused.release()

    # The family was revoked before the rotation stored its new token: that one never exists.
    assert "result" not in rotation
    assert rotation["error"].error == "invalid_grant"
    assert auth.counts()["refresh_tokens"] == 0


def test_code_replayed_while_its_first_exchange_is_in_flight_leaves_no_token(auth, monkeypatch):
    code = new_code(auth)
    paused = Paused(auth, monkeypatch)
    exchange = paused.run(lambda: auth.exchange_code(exchange_form(code)))

    with pytest.raises(OAuthError, match="already used"):
        auth.exchange_code(exchange_form(code))
    paused.release()

    assert "result" not in exchange
    assert exchange["error"].error == "invalid_grant"
    assert auth.counts()["refresh_tokens"] == 0


def test_rotation_and_exchange_still_work_without_reuse(auth):
    first = auth.exchange_code(exchange_form(new_code(auth)))
    second = auth.refresh({"refresh_token": first["refresh_token"]})
    third = auth.refresh({"refresh_token": second["refresh_token"]})
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert auth.counts()["refresh_tokens"] == 3
