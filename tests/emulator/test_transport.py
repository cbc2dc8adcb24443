"""The emulator's one TLS port serves the SDK's HTTPS and gRPC traffic, as Scalekit does."""

from __future__ import annotations

import socket
import ssl
import time

import grpc
import pytest
from scalekit import ScalekitClient
from scalekit.common.exceptions import (
    ScalekitException,
    ScalekitServerException,
    ScalekitUnauthorizedException,
)
from scalekit.v1.organizations import organizations_pb2, organizations_pb2_grpc


def test_sdk_gets_a_token_over_https_and_calls_grpc_on_the_same_port(sdk, fresh_emulator):
    created = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme")
    )
    listed = sdk.organization.list_organizations(page_size=10)[0]

    assert [o.id for o in listed.organizations] == [created[0].organization.id]
    calls = fresh_emulator.control.counters()["calls"]
    assert calls["/oauth/token"] == 1
    assert calls["CreateOrganization"] == 1 and calls["ListOrganization"] == 1


def test_untrusted_ca_fails_at_construction(fresh_emulator, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(ScalekitException) as excinfo:
        ScalekitClient(fresh_emulator.url, fresh_emulator.client_id, fresh_emulator.client_secret)
    assert "CERTIFICATE_VERIFY_FAILED" in str(excinfo.value)


def test_wrong_client_secret_is_unauthorized(fresh_emulator):
    with pytest.raises(ScalekitUnauthorizedException):
        ScalekitClient(fresh_emulator.url, fresh_emulator.client_id, "not-the-secret")


def test_grpc_call_without_token_is_unauthenticated(fresh_emulator):
    credentials = grpc.ssl_channel_credentials(fresh_emulator.ca_path.read_bytes())
    with grpc.secure_channel(f"localhost:{fresh_emulator.port}", credentials) as channel:
        stub = organizations_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as excinfo:
            stub.ListOrganization(
                organizations_pb2.ListOrganizationsRequest(page_size=10), timeout=5
            )
    assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(ScalekitUnauthorizedException):
        raise ScalekitServerException.promote(excinfo.value)


def test_expired_management_token_is_renewed_by_the_sdk(fresh_emulator):
    """The channel keeps the construction-time token as a second `authorization` value; after
    the SDK re-authenticates, only the first (fresh) value is valid and the call succeeds."""
    fresh_emulator.control.set_token_lifetimes(management_token=1)
    client = ScalekitClient(
        fresh_emulator.url, fresh_emulator.client_id, fresh_emulator.client_secret
    )
    fresh_emulator.control.set_token_lifetimes(management_token=3600)
    time.sleep(2.1)
    response = client.organization.list_organizations(page_size=10)[0]

    assert response.total_size == 0
    counters = fresh_emulator.control.counters()
    assert counters["calls"]["/oauth/token"] == 2
    assert counters["calls"]["ListOrganization"] == 2  # refused once, then served


def test_trailing_slash_in_environment_url_still_works(fresh_emulator):
    client = ScalekitClient(
        fresh_emulator.url + "/", fresh_emulator.client_id, fresh_emulator.client_secret
    )
    assert client.organization.list_organizations(page_size=10)[0].total_size == 0


# The HTTP/2 client connection preface and an empty SETTINGS frame (RFC 9113 3.4, 6.5).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS = 0x4


def tls_exchange(emulator, alpn: str, data: bytes, *, at_least: int = 0) -> bytes:
    """Send ``data`` over TLS having negotiated only ``alpn``; return what is answered until the
    server closes the connection, or as soon as ``at_least`` bytes came when it is given."""
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    context.set_alpn_protocols([alpn])
    answer = b""
    with (
        socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == alpn
        tls.sendall(data)
        while not (at_least and len(answer) >= at_least):
            chunk = tls.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_http_and_grpc_are_chosen_by_alpn(fresh_emulator):
    """On one port, `h2` reaches the gRPC server and `http/1.1` the HTTP app, whatever the
    bytes sent: an HTTP/2 preface gets the HTTP app's answer when `http/1.1` was negotiated."""
    h2_answer = tls_exchange(fresh_emulator, "h2", H2_PREFACE, at_least=9)
    # A frame header: 3 bytes of length, then the type; the server's first frame is SETTINGS.
    assert h2_answer[3] == SETTINGS
    http_answer = tls_exchange(
        fresh_emulator,
        "http/1.1",
        b"GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    assert http_answer.startswith(b"HTTP/1.1 200 ") and b'"keys"' in http_answer
    # http.server refuses the preface's "HTTP/2.0" with a 505 page.
    assert b"505" in tls_exchange(fresh_emulator, "http/1.1", H2_PREFACE)
    # And the h2 side is the gRPC service itself.
    credentials = grpc.ssl_channel_credentials(fresh_emulator.ca_path.read_bytes())
    with grpc.secure_channel(f"localhost:{fresh_emulator.port}", credentials) as channel:
        stub = organizations_pb2_grpc.OrganizationServiceStub(channel)
        with pytest.raises(grpc.RpcError) as excinfo:
            stub.ListOrganization(organizations_pb2.ListOrganizationsRequest(), timeout=5)
    assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED
