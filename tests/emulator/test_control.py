"""The control API: faults (rate limit, latency, UNAVAILABLE), counters and webhooks."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from scalekit import ScalekitClient
from scalekit.common.exceptions import (
    ScalekitBadRequestException,
    ScalekitConflictException,
    ScalekitServiceUnavailableException,
    ScalekitTooManyRequestsException,
)
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth.emulator.faults import TokenBucket
from scalekit_auth.emulator.webhooks import new_secret


def create_org(sdk, name: str = "Acme", **fields):
    return sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name=name, **fields)
    )


def test_rate_limit_answers_resource_exhausted_with_retry_after(sdk, fresh_emulator):
    fresh_emulator.control.set_faults(
        rate_limit_rps=1, rate_limit_burst=2, methods=["CreateOrganization"]
    )
    create_org(sdk)
    create_org(sdk)
    with pytest.raises(ScalekitTooManyRequestsException) as excinfo:
        create_org(sdk)
    error = excinfo.value
    assert error.error_code == "RATE_LIMITED"
    # The SDK keeps the grpc.RpcError as the exception's argument, trailers included.
    trailers = dict(error.args[0].trailing_metadata())
    assert 1 <= int(trailers["retry-after"]) <= 2
    # Other methods are not limited, and after a second a token is back.
    assert sdk.organization.list_organizations(page_size=10)[0].total_size == 2
    time.sleep(1.05)
    create_org(sdk)
    counters = fresh_emulator.control.counters()
    assert counters["calls"]["CreateOrganization"] == 4
    assert counters["rejected"]["CreateOrganization"] == 1


def test_http_rate_limit_is_a_429_with_retry_after(fresh_emulator):
    fresh_emulator.control.set_faults(rate_limit_rps=1, rate_limit_burst=1, methods=["/keys"])
    url = f"{fresh_emulator.url}/keys"
    assert requests.get(url, verify=fresh_emulator.ca_path, timeout=5).status_code == 200
    limited = requests.get(url, verify=fresh_emulator.ca_path, timeout=5)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"


def test_unavailable_ratio_fails_calls_and_the_sdk_retries_them(sdk, fresh_emulator):
    fresh_emulator.control.set_faults(unavailable_ratio=1.0, methods=["CreateOrganization"])
    started = time.monotonic()
    with pytest.raises(ScalekitServiceUnavailableException):
        create_org(sdk)
    # The SDK retried twice with jittered back-off (1 s then 2 s, times 0.5-1.0).
    assert time.monotonic() - started >= 1.4
    assert fresh_emulator.control.counters()["calls"]["CreateOrganization"] == 3
    assert fresh_emulator.directory.counts()["organizations"] == 0


def test_latency_is_added_to_each_call(sdk, fresh_emulator):
    fresh_emulator.control.set_faults(latency_ms=150, methods=["ListOrganization"])
    started = time.monotonic()
    sdk.organization.list_organizations(page_size=10)
    assert time.monotonic() - started >= 0.15


def test_bad_fault_options_are_refused_with_a_reason(fresh_emulator):
    with pytest.raises(RuntimeError, match="unknown fault options: latency"):
        fresh_emulator.control.set_faults(latency=5)
    with pytest.raises(RuntimeError, match="unavailable_ratio must be between 0 and 1"):
        fresh_emulator.control.set_faults(unavailable_ratio=2)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"latency_ms": "20"}, "latency_ms must be a number, not '20'"),
        ({"rate_limit_rps": True}, "rate_limit_rps must be a number, not True"),
        ({"unavailable_ratio": None}, "unavailable_ratio must be a number, not None"),
        ({"latency_ms": -1}, "latency_ms must not be negative"),
        ({"methods": "CreateOrganization"}, "methods must be a list of gRPC method names"),
        ({"methods": ["CreateOrganization", 3]}, "methods must be a list"),
        ({"rate_limit_burst": 5}, "rate_limit_burst needs rate_limit_rps"),
        ({"rate_limit_rps": 5, "rate_limit_burst": 0.5}, "rate_limit_burst must be at least 1"),
    ],
)
def test_fault_options_of_the_wrong_type_are_refused_naming_the_option(
    fresh_emulator, options, reason
):
    fresh_emulator.control.set_faults(latency_ms=1, methods=["ListOrganization"])
    with pytest.raises(RuntimeError, match=f"400 .*{reason}"):
        fresh_emulator.control.set_faults(**options)
    # The faults in force are untouched by a refused request.
    assert fresh_emulator.faults.snapshot()["faults"]["methods"] == ["ListOrganization"]


def post_raw(emulator, path: str, body: str) -> requests.Response:
    """A control call with a body as written (NaN and Infinity are not JSON, so the
    ControlClient, which encodes with json, cannot send them)."""
    return requests.post(
        f"{emulator.url}/_emulator/{path}",
        data=body,
        headers={"content-type": "application/json"},
        verify=emulator.ca_path,
        timeout=5,
    )


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("faults", '{"latency_ms": Infinity}', "Infinity is not a JSON number"),
        ("faults", '{"unavailable_ratio": NaN}', "NaN is not a JSON number"),
        ("faults", '{"latency_ms": 1e400}', "latency_ms must be between 0 and 120000, not inf"),
        ("faults", '{"rate_limit_rps": 1e7}', "rate_limit_rps must be between 0 and 1000000"),
        ("keys/rotate", '{"grace_seconds": NaN}', "NaN is not a JSON number"),
        ("keys/rotate", '{"grace_seconds": -1}', "grace_seconds must be between 0 and 2592000"),
        ("keys/rotate", '{"grace_seconds": 1e400}', "grace_seconds must be between 0 and"),
        ("keys/rotate", '{"grace_seconds": "60"}', "grace_seconds must be a number of seconds"),
        ("token-lifetimes", '{"code": -Infinity}', "-Infinity is not a JSON number"),
    ],
)
def test_numbers_that_are_not_finite_or_out_of_range_are_refused(
    fresh_emulator, path, body, reason
):
    kids = [k.kid for k in fresh_emulator.keys.published()]
    answer = post_raw(fresh_emulator, path, body)
    assert answer.status_code == 400 and reason in answer.json()["error"]
    # Nothing applied: no fault, and the signing key neither rotated nor withdrawn.
    assert fresh_emulator.faults.snapshot()["faults"]["latency_ms"] == 0
    assert fresh_emulator.faults.snapshot()["faults"]["unavailable_ratio"] == 0
    assert [k.kid for k in fresh_emulator.keys.published()] == kids


def test_python_callers_get_the_same_checks(fresh_emulator):
    with pytest.raises(ValueError, match="latency_ms must be between 0 and 120000, not inf"):
        fresh_emulator.faults.configure({"latency_ms": float("inf")})
    with pytest.raises(ValueError, match="grace_seconds must be between 0 and .*not nan"):
        fresh_emulator.keys.rotate(float("nan"))


def test_token_lifetimes_are_all_applied_or_none(fresh_emulator):
    with pytest.raises(RuntimeError, match="400 .*code must be a whole number of seconds"):
        fresh_emulator.control.set_token_lifetimes(access_token=5, code=-1)
    with pytest.raises(
        RuntimeError, match="400 .*refresh_reuse_grace must be .* and 3600, not 7200"
    ):
        fresh_emulator.control.set_token_lifetimes(access_token=5, refresh_reuse_grace=7200)
    with pytest.raises(RuntimeError, match="400 .*access_token must be .*, not True"):
        fresh_emulator.control.set_token_lifetimes(access_token=True)
    assert fresh_emulator.auth.lifetimes.access_token == 299
    applied = fresh_emulator.control.set_token_lifetimes(access_token=5, code=30)
    assert (applied["access_token"], applied["code"]) == (5, 30)


def test_fault_methods_match_whole_names_only(sdk, fresh_emulator):
    fresh_emulator.control.set_faults(unavailable_ratio=1.0, methods=["CreateOrg", "/oauth"])
    create_org(sdk)
    ScalekitClient(fresh_emulator.url, fresh_emulator.client_id, fresh_emulator.client_secret)
    assert fresh_emulator.control.counters()["rejected"] == {}
    fresh_emulator.control.set_faults(rate_limit_rps=0.5, methods=["/keys"])
    url = f"{fresh_emulator.url}/keys"
    assert requests.get(url, verify=fresh_emulator.ca_path, timeout=5).status_code == 200
    assert requests.get(url, verify=fresh_emulator.ca_path, timeout=5).status_code == 429


def test_duplicate_status_names_are_checked_and_listed(sdk, fresh_emulator):
    with pytest.raises(
        RuntimeError, match="400 .*'CONFLICT' is not a gRPC status name; one of"
    ) as e:
        fresh_emulator.control.set_duplicate_status(
            organization_external_id="ALREADY_EXISTS", user_email="CONFLICT"
        )
    assert "ALREADY_EXISTS" in str(e.value) and "OK," not in str(e.value)
    # Nothing of a refused request applies; a valid one does.
    create_org(sdk, external_id="acme")
    with pytest.raises(ScalekitBadRequestException):
        create_org(sdk, external_id="acme")
    answer = fresh_emulator.control.set_duplicate_status(organization_external_id="ALREADY_EXISTS")
    assert answer["organization_external_id"] == "ALREADY_EXISTS"
    with pytest.raises(ScalekitConflictException):
        create_org(sdk, external_id="acme")


def test_a_missing_required_field_is_named(fresh_emulator):
    with pytest.raises(RuntimeError, match="400 .*the request body needs 'secret'"):
        fresh_emulator.control.call("POST", "webhooks", {"url": "http://127.0.0.1:9/hook"})
    with pytest.raises(RuntimeError, match="400 .*the request body needs 'sid'"):
        fresh_emulator.control.call("POST", "sessions/end", {})


def test_token_bucket_refills_at_its_rate():
    bucket = TokenBucket(rate=100, burst=2)
    assert bucket.take() == 0 and bucket.take() == 0
    wait = bucket.take()
    assert 0 < wait <= 0.01
    time.sleep(wait + 0.005)
    assert bucket.take() == 0


def test_control_token_protects_the_control_api(emulator):
    from scalekit_auth.emulator.server import Emulator

    with Emulator(port=0, control_token="s3cret").start() as protected:
        anonymous = requests.get(
            f"{protected.url}/_emulator/state", verify=protected.ca_path, timeout=5
        )
        assert anonymous.status_code == 401
        assert protected.control.state()["organizations"] == 0


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_are_signed_the_way_the_sdk_verifies(sdk, fresh_emulator):
    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    secret = new_secret()
    _Receiver.received = []
    try:
        fresh_emulator.control.configure_webhooks(
            f"http://127.0.0.1:{receiver.server_port}/hook", secret
        )
        org = create_org(sdk)[0].organization
        deadline = time.monotonic() + 5
        while not _Receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        receiver.shutdown()
    headers, body = _Receiver.received[0]
    headers = {k.lower(): v for k, v in headers.items()}
    assert sdk.verify_webhook_payload(secret, headers, body) is True
    event = json.loads(body)
    assert event["type"] == "organization.created" and event["object"] == "Organization"
    assert event["data"]["id"] == org.id and event["id"].startswith("evt_")
    # The receiver has the body before the emulator has read its 204 and marked the delivery.
    deadline = time.monotonic() + 5
    while not fresh_emulator.control.deliveries()[0]["delivered"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fresh_emulator.control.deliveries()[0]["delivered"] is True


def test_reset_restores_the_start_up_uris_and_webhooks(receiver):
    """An app configured against a running emulator keeps logging in after a reset."""
    from scalekit.common.scalekit import AuthorizationUrlOptions

    from scalekit_auth.emulator.server import Emulator
    from scalekit_auth.emulator.testing import hosted_login

    from .conftest import AFTER_LOGOUT, CALLBACK, wait_for

    hook = f"http://127.0.0.1:{receiver.server_port}/hook"
    configured = Emulator(
        port=0,
        redirect_uris=[CALLBACK],
        post_logout_redirect_uris=[AFTER_LOGOUT],
        initiate_login_uri="https://app.example.test/login/",
        webhook_url=hook,
    )
    with configured.start() as emulator:
        assert f"SCALEKIT_WEBHOOK_SECRET={emulator.webhook_secret}" in emulator.banner()
        emulator.control.register_uris(["https://app.example.test/other/"])
        emulator.control.reset()
        assert emulator.control.register_uris() == {
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": [AFTER_LOGOUT],
            "initiate_login_uri": "https://app.example.test/login/",
        }
        sdk = ScalekitClient(emulator.url, emulator.client_id, emulator.client_secret)
        org = create_org(sdk)[0].organization
        sdk.users.create_user_and_membership(
            org.id, users_pb2.CreateUser(email="ada@acme.example"), send_invitation_email=False
        )
        options = AuthorizationUrlOptions()
        options.state = "st"
        url = sdk.get_authorization_url(CALLBACK, options)
        location = hosted_login(url, "ada@acme.example", ca_path=emulator.ca_path)
        assert location.startswith(CALLBACK + "?code=")
        assert wait_for(lambda: len(receiver.received) >= 2)
    headers, body = receiver.received[0]
    assert json.loads(body)["type"] == "organization.created"
    assert sdk.verify_webhook_payload(emulator.webhook_secret, headers, body) is True


def test_constructor_refuses_a_bad_uri_or_webhook_secret_before_listening():
    from scalekit_auth.emulator.server import Emulator

    with pytest.raises(ValueError, match="'app.example.test/cb' is not an absolute"):
        Emulator(redirect_uris=["app.example.test/cb"])
    with pytest.raises(ValueError, match="not standard base64"):
        Emulator(webhook_url="http://127.0.0.1:9/hook", webhook_secret="whsec_abc")
