"""The authorization server called directly (no HTTP), where a race must be made deterministic:
a token or code reused while its first exchange is still building its answer."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from scalekit_auth.emulator import authserver
from scalekit_auth.emulator.authserver import REVOKED_FAMILY_MEMORY, AuthServer, OAuthError
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


@pytest.fixture
def frozen_clock(monkeypatch) -> SimpleNamespace:
    """The authorization server's clock, stopped at ``frozen_clock.now`` (a coarse clock, or two
    requests in one tick: impossible to bring about on purpose with the real one)."""
    clock = SimpleNamespace(now=time.time())
    monkeypatch.setattr(authserver, "time", SimpleNamespace(time=lambda: clock.now))
    return clock


def test_a_refresh_token_used_twice_at_the_same_clock_reading_is_a_reuse(auth, frozen_clock):
    first = auth.exchange_code(exchange_form(new_code(auth)))
    second = auth.refresh({"refresh_token": first["refresh_token"]})

    with pytest.raises(OAuthError, match="already used"):
        auth.refresh({"refresh_token": first["refresh_token"]})
    # The reuse revoked the family: the token the first use gave no longer works either.
    with pytest.raises(OAuthError, match="invalid or expired"):
        auth.refresh({"refresh_token": second["refresh_token"]})


def test_a_reuse_grace_accepts_a_second_use_only_within_its_window(auth, frozen_clock):
    auth.lifetimes.update({"refresh_reuse_grace": 30})
    first = auth.exchange_code(exchange_form(new_code(auth)))
    auth.refresh({"refresh_token": first["refresh_token"]})
    frozen_clock.now += 29
    auth.refresh({"refresh_token": first["refresh_token"]})
    frozen_clock.now += 1
    with pytest.raises(OAuthError, match="already used"):
        auth.refresh({"refresh_token": first["refresh_token"]})


def test_purge_drops_expired_tokens_and_finished_sessions_but_keeps_live_ones(auth):
    kept = auth.exchange_code(exchange_form(new_code(auth)))
    ended = auth.exchange_code(exchange_form(new_code(auth)))
    sid = auth.keys.decode(ended["id_token"], verify_exp=False)["sid"]
    auth.end_session(sid)
    now = time.time()

    # Codes expired, the ended session is past its memory; the other has a live refresh token.
    later = now + max(auth.lifetimes.code, REVOKED_FAMILY_MEMORY) + 1
    dropped = auth.purge_expired(later)
    assert (dropped["codes"], dropped["sessions"], dropped["refresh_tokens"]) == (2, 1, 0)
    assert auth.find_session(sid) is None
    assert auth.counts() == {"sessions": 1, "codes": 0, "refresh_tokens": 1}
    assert auth.refresh({"refresh_token": kept["refresh_token"]})["refresh_token"]

    # Past every refresh token's expiry nothing of that login is left.
    dropped = auth.purge_expired(now + 2 * auth.lifetimes.refresh_token + 1)
    assert (dropped["refresh_tokens"], dropped["sessions"]) == (2, 1)
    assert auth.counts() == {"sessions": 0, "codes": 0, "refresh_tokens": 0}


def test_the_token_paths_purge_on_their_own_cadence(auth, frozen_clock, monkeypatch):
    first = auth.exchange_code(exchange_form(new_code(auth)))
    auth.lifetimes.update({"refresh_token": 60})
    rotated = auth.refresh({"refresh_token": first["refresh_token"]})
    assert auth.counts()["refresh_tokens"] == 2
    frozen_clock.now += authserver.PURGE_INTERVAL + 1

    # The first token (30 days) is still stored, the rotated one (60 s) expired: the next
    # refresh's purge drops it, with no call to purge_expired().
    with pytest.raises(OAuthError, match="invalid or expired"):
        auth.refresh({"refresh_token": rotated["refresh_token"]})
    assert auth.counts()["refresh_tokens"] == 1
