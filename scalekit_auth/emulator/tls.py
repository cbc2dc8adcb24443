"""The emulator's own certificate authority and server certificate.

Generated on first start into the state directory (``ca.pem``, ``server.pem``, ``server.key``)
and reused afterwards, so a client that trusts ``ca.pem`` keeps trusting a restarted emulator.
The SDK's two transports are pointed at ``ca.pem`` by ``REQUESTS_CA_BUNDLE`` and
``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` (see ``scalekit_auth.client.trust_ca_bundle``).

Emulators started without a state directory share one certificate directory per process
(``process_certificates()``): grpc-core reads its roots file once per process, so every such
emulator must present a certificate from the CA it read, and the file must outlive them.
"""

from __future__ import annotations

import atexit
import datetime as dt
import ipaddress
import os
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTNAMES = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")
VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class Certificates:
    ca_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self, alpn: list[str]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        context.set_alpn_protocols(alpn)
        return context


def ensure_certificates(state_dir: Path) -> Certificates:
    """Return the certificates in ``state_dir``, creating them when missing or about to expire."""
    state_dir.mkdir(parents=True, exist_ok=True)
    certs = Certificates(state_dir / "ca.pem", state_dir / "server.pem", state_dir / "server.key")
    if all(p.is_file() for p in (certs.ca_path, certs.cert_path, certs.key_path)):
        cert = x509.load_pem_x509_certificate(certs.cert_path.read_bytes())
        if cert.not_valid_after_utc - dt.timedelta(days=7) > dt.datetime.now(dt.UTC):
            return certs
    _generate(certs)
    return certs


_process_lock = threading.Lock()
_process_dir: Path | None = None


def process_certificates() -> Certificates:
    """The certificates shared by this process's emulators that have no state directory.

    Created in a temporary directory on first use and removed when the process that created it
    exits (a forked child reuses them and leaves them alone).
    """
    global _process_dir
    with _process_lock:
        if _process_dir is None:
            _process_dir = Path(tempfile.mkdtemp(prefix="scalekit-emulator-certs-"))
            atexit.register(_remove_in_owner, _process_dir, os.getpid())
        return ensure_certificates(_process_dir)


def _remove_in_owner(directory: Path, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Scalekit emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _generate(certs: Certificates) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Scalekit emulator local CA"))
        .issuer_name(_name("Scalekit emulator local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(h) for h in HOSTNAMES] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES
    ]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    certs.key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certs.key_path.chmod(0o600)
    certs.cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    certs.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
