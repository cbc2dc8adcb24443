"""The emulator's OAuth/OIDC endpoints, driven by the real SDK and a browser-like client."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from scalekit import ScalekitClient
from scalekit.common.exceptions import ScalekitBadRequestException
from scalekit.common.scalekit import (
    AuthorizationUrlOptions,
    CodeAuthenticationOptions,
    LogoutUrlOptions,
    TokenValidationOptions,
)
from scalekit.v1.users import users_pb2

from scalekit_auth.emulator.testing import hosted_login

from .conftest import AFTER_LOGOUT, CALLBACK, pkce_pair

SCOPES = ["openid", "profile", "email", "offline_access"]


def authorize_url(sdk, *, state="st-1", nonce="n-1", challenge=None, scopes=SCOPES, **extra) -> str:
    options = AuthorizationUrlOptions()
    options.state, options.nonce, options.scopes = state, nonce, scopes
    for name, value in extra.items():
        setattr(options, name, value)
    url = sdk.get_authorization_url(CALLBACK, options)
    if challenge:
        url += f"&code_challenge={challenge}&code_challenge_method=S256"
    return url


def login(sdk, emulator, email="ada@acme.example", **kwargs) -> dict[str, list[str]]:
    location = hosted_login(authorize_url(sdk, **kwargs), email, ca_path=emulator.ca_path)
    assert location.startswith(CALLBACK)
    return parse_qs(urlsplit(location).query)


def exchange(sdk, code: str, verifier: str | None = None) -> dict:
    options = CodeAuthenticationOptions()
    options.code_verifier = verifier
    return sdk.authenticate_with_code(code, CALLBACK, options)


def claims(emulator, token: str) -> dict:
    jwks = requests.get(f"{emulator.url}/keys", verify=emulator.ca_path, timeout=5).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK.from_dict(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    return jwt.decode(
        token, key, algorithms=["RS256"], audience=emulator.client_id, issuer=emulator.url
    )


def test_discovery_and_jwks(fresh_emulator):
    discovery = requests.get(
        f"{fresh_emulator.url}/.well-known/openid-configuration",
        verify=fresh_emulator.ca_path,
        timeout=5,
    ).json()
    assert discovery["issuer"] == fresh_emulator.url
    assert discovery["jwks_uri"] == f"{fresh_emulator.url}/keys"
    assert discovery["end_session_endpoint"] == f"{fresh_emulator.url}/oidc/logout"
    keys = requests.get(discovery["jwks_uri"], verify=fresh_emulator.ca_path, timeout=5).json()[
        "keys"
    ]
    assert [(k["kty"], k["alg"], k["use"], k["e"]) for k in keys] == [
        ("RSA", "RS256", "sig", "AQAB")
    ]
    assert keys[0]["kid"].startswith("snk_")


def test_unregistered_redirect_uri_shows_an_error_page(sdk, registered):
    options = AuthorizationUrlOptions()
    options.state = "s"
    url = sdk.get_authorization_url("https://evil.example/callback", options)
    page = requests.get(url, verify=registered.ca_path, allow_redirects=False, timeout=5)
    assert page.status_code == 400
    assert "redirect_uri_mismatch" in page.text and "evil.example" in page.text


def test_login_page_prefills_login_hint_and_refuses_unknown_email(sdk, registered, org_and_user):
    url = authorize_url(sdk, login_hint="ada@acme.example")
    page = requests.get(url, verify=registered.ca_path, timeout=5)
    assert 'value="ada@acme.example"' in page.text
    with pytest.raises(AssertionError, match="No user with the email 'nobody@acme.example'"):
        hosted_login(url, "nobody@acme.example", ca_path=registered.ca_path)


def test_authorization_code_flow_with_pkce_gives_tokens_with_scalekit_claims(
    sdk, registered, org_and_user
):
    org, user = org_and_user
    verifier, challenge = pkce_pair()
    params = login(sdk, registered, challenge=challenge)
    assert params["state"] == ["st-1"]

    result = exchange(sdk, params["code"][0], verifier)

    assert result["user"]["email"] == "ada@acme.example"
    assert result["organization_id"] == org.id
    assert result["connection_id"].startswith("conn_")
    id_claims = claims(registered, result["id_token"])
    assert id_claims["sub"] == user.id and id_claims["nonce"] == "n-1"
    assert id_claims["aud"] == [registered.client_id] and id_claims["sid"].startswith("ses_")
    assert (id_claims["given_name"], id_claims["family_name"]) == ("Ada", "Lovelace")
    access = claims(registered, result["access_token"])
    assert access["oid"] == org.id and access["xoid"] == "acme-1" and access["xuid"] == "legacy-42"
    assert access["roles"] == ["admin"]
    assert access["scope"] == " ".join(SCOPES) and access["jti"].startswith("tkn_")
    assert access["sid"] == id_claims["sid"]
    assert result["refresh_token"]
    options = TokenValidationOptions(issuer=registered.url, audience=[registered.client_id])
    assert sdk.validate_access_token(result["access_token"], options)


def test_pkce_verifier_must_match(sdk, registered, org_and_user):
    _, challenge = pkce_pair()
    code = login(sdk, registered, challenge=challenge)["code"][0]
    with pytest.raises(ScalekitBadRequestException, match="code_verifier does not match"):
        exchange(sdk, code, "a-different-verifier-" + "x" * 30)
    code = login(sdk, registered, challenge=challenge)["code"][0]
    with pytest.raises(ScalekitBadRequestException, match="code_verifier is required"):
        exchange(sdk, code, None)


def test_codes_are_single_use_and_expire(sdk, registered, org_and_user):
    code = login(sdk, registered)["code"][0]
    first = exchange(sdk, code)
    with pytest.raises(ScalekitBadRequestException, match="already used"):
        exchange(sdk, code)
    # The replay also revoked what the first exchange issued.
    with pytest.raises(ScalekitBadRequestException):
        sdk.refresh_access_token(first["refresh_token"])

    registered.control.set_token_lifetimes(code=0)
    code = login(sdk, registered)["code"][0]
    time.sleep(0.01)
    with pytest.raises(ScalekitBadRequestException, match="expired"):
        exchange(sdk, code)


def test_refresh_tokens_rotate_and_reuse_revokes_the_family(sdk, registered, org_and_user):
    tokens = exchange(sdk, login(sdk, registered)["code"][0])
    rotated = sdk.refresh_access_token(tokens["refresh_token"])
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert (
        claims(registered, rotated["access_token"])["sid"]
        == claims(registered, tokens["access_token"])["sid"]
    )

    with pytest.raises(ScalekitBadRequestException, match="already used"):
        sdk.refresh_access_token(tokens["refresh_token"])
    with pytest.raises(ScalekitBadRequestException, match="invalid"):
        sdk.refresh_access_token(rotated["refresh_token"])


def test_no_refresh_token_without_offline_access(sdk, registered, org_and_user):
    result = exchange(sdk, login(sdk, registered, scopes=["openid", "email"])["code"][0])
    assert result["refresh_token"] is None


def test_logout_ends_the_session_and_redirects_to_a_registered_uri(sdk, registered, org_and_user):
    tokens = exchange(sdk, login(sdk, registered)["code"][0])
    url = sdk.get_logout_url(
        LogoutUrlOptions(
            id_token_hint=tokens["id_token"], post_logout_redirect_uri=AFTER_LOGOUT, state="bye"
        )
    )
    answer = requests.get(url, verify=registered.ca_path, allow_redirects=False, timeout=5)
    assert answer.status_code == 302 and answer.headers["location"] == AFTER_LOGOUT + "?state=bye"
    with pytest.raises(ScalekitBadRequestException, match="refresh token is invalid"):
        sdk.refresh_access_token(tokens["refresh_token"])

    url = sdk.get_logout_url(LogoutUrlOptions(post_logout_redirect_uri="https://evil.example/"))
    answer = requests.get(url, verify=registered.ca_path, allow_redirects=False, timeout=5)
    assert answer.status_code == 400 and "not registered" in answer.text


def test_prompt_none_needs_a_session_and_reuses_it(sdk, registered, org_and_user):
    browser = requests.Session()
    location = hosted_login(
        authorize_url(sdk, prompt="none"), "-", ca_path=registered.ca_path, session=browser
    )
    assert parse_qs(urlsplit(location).query)["error"] == ["login_required"]

    hosted_login(
        authorize_url(sdk), "ada@acme.example", ca_path=registered.ca_path, session=browser
    )
    location = hosted_login(
        authorize_url(sdk, prompt="none"), "-", ca_path=registered.ca_path, session=browser
    )
    assert "code" in parse_qs(urlsplit(location).query)


def test_key_rotation_keeps_old_tokens_valid_during_the_grace_period(sdk, registered, org_and_user):
    before = exchange(sdk, login(sdk, registered)["code"][0])
    rotation = registered.control.rotate_keys(grace_seconds=3)
    # The grace period starts when the new key takes over, at the latest when the call returns.
    rotated_at = time.monotonic()
    # As with the real service, an SDK client that already cached the JWKS never refetches it:
    # the new kid is a bare KeyError (scalekit_auth verifies tokens itself for this reason).
    with pytest.raises(KeyError, match=rotation["new_kid"]):
        exchange(sdk, login(sdk, registered)["code"][0])
    fresh_client = ScalekitClient(registered.url, registered.client_id, registered.client_secret)
    after = exchange(fresh_client, login(fresh_client, registered)["code"][0])

    assert jwt.get_unverified_header(before["access_token"])["kid"] == rotation["old_kid"]
    assert jwt.get_unverified_header(after["access_token"])["kid"] == rotation["new_kid"]
    assert fresh_client.validate_access_token(before["access_token"])
    assert fresh_client.validate_access_token(after["access_token"])
    time.sleep(max(0.0, rotated_at + 3.1 - time.monotonic()))
    kids = [
        k["kid"]
        for k in requests.get(f"{registered.url}/keys", verify=registered.ca_path).json()["keys"]
    ]
    assert kids == [rotation["new_kid"]]


def test_idp_initiated_login_token_is_readable_by_the_sdk(sdk, registered, org_and_user):
    org, _ = org_and_user
    registered.control.register_uris(initiate_login_uri="https://app.example.test/auth/login/")
    answer = registered.control.idp_initiated_login(
        organization_id=org.id, login_hint="ada@acme.example", relay_state="/reports/"
    )
    assert answer["url"].startswith("https://app.example.test/auth/login/?idp_initiated_login=")
    found = sdk.get_idp_initiated_login_claims(answer["token"])
    assert (found["organization_id"], found["login_hint"], found["relay_state"]) == (
        org.id,
        "ada@acme.example",
        "/reports/",
    )
    assert found["connection_id"].startswith("conn_")


def test_concurrent_reuse_of_a_refresh_token_leaves_no_working_token(sdk, registered, org_and_user):
    """Two clients refresh with one token at once, 10 times over. Whoever is refused as a reuse,
    the family is revoked: no refresh token handed out in the race may still work."""
    clients = [ScalekitClient(registered.url, registered.client_id, registered.client_secret)]
    clients.append(ScalekitClient(registered.url, registered.client_id, registered.client_secret))
    reuse_seen = 0
    for _ in range(10):
        token = exchange(sdk, login(sdk, registered)["code"][0])["refresh_token"]
        barrier = threading.Barrier(2)
        outcomes: list[tuple[str, str]] = []

        def use(client, token=token, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                outcomes.append(("ok", client.refresh_access_token(token)["refresh_token"]))
            except ScalekitBadRequestException as exc:
                outcomes.append(("refused", str(exc)))

        threads = [threading.Thread(target=use, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(outcomes) == 2 and sum(kind == "ok" for kind, _ in outcomes) <= 1
        if any("already used" in detail for kind, detail in outcomes if kind == "refused"):
            reuse_seen += 1
            for kind, issued in outcomes:
                if kind == "ok":
                    with pytest.raises(ScalekitBadRequestException, match="invalid"):
                        sdk.refresh_access_token(issued)
    assert reuse_seen == 10


def test_id_token_carries_picture_locale_and_username_when_the_profile_has_them(
    sdk, registered, org_and_user
):
    org, _ = org_and_user
    sdk.users.create_user_and_membership(
        org.id,
        users_pb2.CreateUser(
            email="grace@acme.example",
            user_profile=users_pb2.CreateUserProfile(
                given_name="Grace",
                locale="en-GB",
                preferred_username="ghopper",
                picture="https://img.example/grace.png",
            ),
        ),
        send_invitation_email=False,
    )
    with_profile = claims(
        registered,
        exchange(sdk, login(sdk, registered, "grace@acme.example")["code"][0])["id_token"],
    )
    assert (
        with_profile["picture"],
        with_profile["locale"],
        with_profile["preferred_username"],
    ) == ("https://img.example/grace.png", "en-GB", "ghopper")
    without = claims(registered, exchange(sdk, login(sdk, registered)["code"][0])["id_token"])
    assert not {"picture", "locale", "preferred_username"} & set(without)


def test_key_rotations_while_tokens_are_minted_never_fail_a_token_request(fresh_emulator):
    """The new key is made before the swap: a token minted during a rotation is signed by the
    old key or the new one, never by none (that was an HTTP 500)."""
    statuses: list[int] = []
    stop = threading.Event()

    def mint():
        with requests.Session() as browser:
            while not stop.is_set():
                answer = browser.post(
                    f"{fresh_emulator.url}/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": fresh_emulator.client_id,
                        "client_secret": fresh_emulator.client_secret,
                    },
                    verify=fresh_emulator.ca_path,
                    timeout=10,
                )
                statuses.append(answer.status_code)

    threads = [threading.Thread(target=mint) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):
            fresh_emulator.control.rotate_keys(grace_seconds=60)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert statuses and set(statuses) == {200}


def authorize_query(registered, **params) -> dict[str, str]:
    return {
        "client_id": registered.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid email",
        "response_type": "code",
        "state": "st-1",
        **params,
    }


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"scope": "email"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "S512"}, "invalid_request"),
    ],
)
def test_the_login_forms_post_is_checked_as_its_get_is(registered, org_and_user, params, error):
    """A client can POST the form without loading the page: it gets the GET's answer."""
    query = authorize_query(registered, **params)
    page = requests.get(
        f"{registered.url}/oauth/authorize?{urlencode(query)}",
        verify=registered.ca_path,
        allow_redirects=False,
        timeout=5,
    )
    posted = requests.post(
        f"{registered.url}/oauth/authorize",
        data={**query, "email": "ada@acme.example"},
        verify=registered.ca_path,
        allow_redirects=False,
        timeout=5,
    )
    for answer in (page, posted):
        assert answer.status_code == 302
        found = parse_qs(urlsplit(answer.headers["location"]).query)
        assert found["error"] == [error] and found["state"] == ["st-1"] and "code" not in found


def token_request(emulator, authorization: str) -> requests.Response:
    return requests.post(
        f"{emulator.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": authorization},
        verify=emulator.ca_path,
        timeout=5,
    )


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic !!!not-base64", "not base64 of id:secret"),
        ("Basic " + base64.b64encode(b"\xff\xfe:secret").decode(), "not base64 of id:secret"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "no ':' between id and secret"),
    ],
)
def test_a_malformed_basic_header_is_401_invalid_client(fresh_emulator, header, reason):
    answer = token_request(fresh_emulator, header)
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic")
    body = answer.json()
    assert body["error"] == "invalid_client" and reason in body["error_description"]


def test_basic_credentials_are_url_decoded(fresh_emulator):
    """RFC 6749 2.3.1: id and secret are form-urlencoded before they are joined by ':'."""
    encoded = "".join(f"%{ord(c):02X}" for c in fresh_emulator.client_secret)
    pair = f"{fresh_emulator.client_id}:{encoded}".encode()
    answer = token_request(fresh_emulator, "Basic " + base64.b64encode(pair).decode())
    assert answer.status_code == 200 and answer.json()["token_type"] == "Bearer"


def test_an_unreadable_content_length_is_a_400(fresh_emulator):
    context = ssl.create_default_context(cafile=str(fresh_emulator.ca_path))
    context.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("localhost", fresh_emulator.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):  # the server closes: the body cannot be framed
            answer += chunk
    answer = answer.decode()
    assert answer.startswith("HTTP/1.1 400 ")
    assert "content-length 'abc' is not a number of bytes" in answer
