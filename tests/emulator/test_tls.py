"""The emulator's CA and server certificate: the certificate names the host the emulator is
started on, and a missing name is added by a new server certificate from the same CA."""

from __future__ import annotations

import socket
import ssl

import pytest
from cryptography import x509
from scalekit import ScalekitClient

from scalekit_auth.emulator.testing import start_emulator
from scalekit_auth.emulator.tls import ensure_certificates, names_for_host

LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def issued_by_ca(certs) -> bool:
    ca = x509.load_pem_x509_certificate(certs.ca_path.read_bytes())
    server = x509.load_pem_x509_certificate(certs.cert_path.read_bytes())
    server.verify_directly_issued_by(ca)  # raises when not
    return True


@pytest.mark.parametrize(
    ("host", "extra"),
    [
        ("localhost", set()),
        ("0.0.0.0", {"0.0.0.0", socket.gethostname().lower()}),
        ("::", {"::", socket.gethostname().lower()}),
        ("Emulator.Example.TEST", {"emulator.example.test"}),
        ("10.1.2.3", {"10.1.2.3"}),
    ],
)
def test_names_for_host(host, extra):
    assert set(names_for_host(host)) == LOOPBACK | extra


def test_a_host_that_cannot_be_named_is_refused():
    with pytest.raises(ValueError, match="host '' cannot be named in a TLS certificate"):
        names_for_host("")


def test_a_missing_name_gets_a_server_certificate_from_the_same_ca(tmp_path):
    certs = ensure_certificates(tmp_path)
    ca, server = certs.ca_path.read_bytes(), certs.cert_path.read_bytes()
    assert certs.server_names() == LOOPBACK and certs.ca_key_path.stat().st_mode & 0o077 == 0

    assert ensure_certificates(tmp_path, ["localhost"]).cert_path.read_bytes() == server
    ensure_certificates(tmp_path, names_for_host("0.0.0.0"))
    assert certs.ca_path.read_bytes() == ca and issued_by_ca(certs)
    assert certs.server_names() == set(names_for_host("0.0.0.0"))
    # A later name is added to those the certificate had.
    ensure_certificates(tmp_path, ["emulator.example.test"])
    assert certs.ca_path.read_bytes() == ca and issued_by_ca(certs)
    assert certs.server_names() == set(names_for_host("0.0.0.0")) | {"emulator.example.test"}


def test_a_state_dir_without_the_ca_key_gets_a_new_ca_only_when_a_name_is_missing(tmp_path):
    """State directories made before ca.key was kept still work as they are on localhost."""
    certs = ensure_certificates(tmp_path)
    certs.ca_key_path.unlink()
    ca = certs.ca_path.read_bytes()
    ensure_certificates(tmp_path, names_for_host("localhost"))
    assert certs.ca_path.read_bytes() == ca and not certs.ca_key_path.exists()

    ensure_certificates(tmp_path, ["emulator.example.test"])
    assert certs.ca_path.read_bytes() != ca and certs.ca_key_path.is_file()
    assert "emulator.example.test" in certs.server_names() and issued_by_ca(certs)


def test_an_emulator_on_every_interface_is_verified_by_the_sdk_and_by_hostname():
    with start_emulator(host="0.0.0.0") as emulator:
        assert emulator.url.startswith("https://0.0.0.0:")
        client = ScalekitClient(emulator.url, emulator.client_id, emulator.client_secret)
        assert client.organization.list_organizations(page_size=10)[0].total_size == 0
        # A client elsewhere names the machine: the certificate verifies for that name too.
        context = ssl.create_default_context(cafile=str(emulator.ca_path))
        with (
            socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=socket.gethostname()) as tls,
        ):
            assert tls.version()
