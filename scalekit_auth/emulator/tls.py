"""The emulator's own certificate authority and server certificate.

Generated on first start into the state directory (``ca.pem`` and its key ``ca.key``,
``server.pem``, ``server.key``) and reused afterwards, so a client that trusts ``ca.pem`` keeps
trusting a restarted emulator. The SDK's two transports are pointed at ``ca.pem`` by
``REQUESTS_CA_BUNDLE`` and ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` (see
``scalekit_auth.client.trust_ca_bundle``).

The server certificate names ``localhost``, ``127.0.0.1`` and ``::1``, plus the host the
emulator is started on (``names_for_host``). When a start needs a name the certificate lacks,
a new server certificate is issued by the same CA (``ca.key``), naming the old names and the new
ones, so clients keep trusting ``ca.pem``. Only a state directory without ``ca.key`` (made before
it was kept) or with an expiring CA gets a new CA.

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
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTNAMES = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")
VALIDITY = dt.timedelta(days=825)
# A certificate this close to its end is replaced on start.
RENEW_BEFORE = dt.timedelta(days=7)

# Held while certificate files are written or loaded, so an emulator starting in this process
# never loads a key and a certificate from two different issues.
_files_lock = threading.Lock()


@dataclass(frozen=True)
class Certificates:
    ca_path: Path
    cert_path: Path
    key_path: Path
    ca_key_path: Path | None = None

    def server_context(self, alpn: list[str]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with _files_lock:
            context.load_cert_chain(self.cert_path, self.key_path)
        context.set_alpn_protocols(alpn)
        return context

    def server_names(self) -> set[str]:
        """The DNS names and IP addresses the server certificate is valid for."""
        return _names_in(x509.load_pem_x509_certificate(self.cert_path.read_bytes()))


def names_for_host(host: str) -> list[str]:
    """The names a server certificate needs for an emulator started on ``host``.

    Always ``localhost`` and the loopback addresses, and ``host`` itself. An unspecified
    address (``0.0.0.0``, ``::``) listens on every interface, where clients reach it by the
    machine's name or by ``localhost``: it also gets ``socket.gethostname()``. Raises
    ``ValueError`` for a host that cannot be named in a certificate.
    """
    names = [*HOSTNAMES, *ADDRESSES, host]
    try:
        if ipaddress.ip_address(host).is_unspecified:
            names.append(socket.gethostname())
    except ValueError:
        pass
    return sorted(_normalize(names))


def _normalize(names: Iterable[str]) -> set[str]:
    """Names as they are compared: IP addresses in their canonical form, DNS names in
    lower-case ASCII (IDNA)."""
    normalized = set()
    for name in names:
        try:
            normalized.add(str(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        try:
            dns = name.strip().rstrip(".").encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise ValueError(f"host {name!r} cannot be named in a TLS certificate") from exc
        if not dns:
            raise ValueError(f"host {name!r} cannot be named in a TLS certificate")
        normalized.add(dns)
    return normalized


def _names_in(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return _normalize(
        [*san.get_values_for_type(x509.DNSName)]
        + [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    )


def _valid_for_a_while(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - RENEW_BEFORE > dt.datetime.now(dt.UTC)


def ensure_certificates(state_dir: Path, names: Iterable[str] = ()) -> Certificates:
    """The certificates in ``state_dir``, valid for ``localhost``, the loopback addresses and
    ``names`` (see ``names_for_host``).

    Kept as they are when the server certificate has every name and is not about to expire;
    otherwise a server certificate with the names it had and those missing is issued by the
    CA in ``ca.key``; and when there is no usable CA, a new CA and server certificate are made.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    certs = Certificates(
        state_dir / "ca.pem",
        state_dir / "server.pem",
        state_dir / "server.key",
        state_dir / "ca.key",
    )
    wanted = _normalize([*HOSTNAMES, *ADDRESSES, *names])
    with _files_lock:
        server = None
        if all(p.is_file() for p in (certs.ca_path, certs.cert_path, certs.key_path)):
            server = x509.load_pem_x509_certificate(certs.cert_path.read_bytes())
            if _valid_for_a_while(server) and wanted <= _names_in(server):
                return certs
        ca = _load_ca(certs)
        if ca is None:
            _generate(certs, wanted)
        else:
            kept = _names_in(server) if server is not None else set()
            _issue_server(certs, *ca, wanted | kept)
    return certs


_process_lock = threading.Lock()
_process_dir: Path | None = None


def process_certificates(names: Iterable[str] = ()) -> Certificates:
    """The certificates shared by this process's emulators that have no state directory,
    valid for ``names`` too (a new server certificate from the same CA when one is missing).

    Created in a temporary directory on first use and removed when the process that created it
    exits (a forked child reuses them and leaves them alone).
    """
    global _process_dir
    with _process_lock:
        if _process_dir is None:
            _process_dir = Path(tempfile.mkdtemp(prefix="scalekit-emulator-certs-"))
            atexit.register(_remove_in_owner, _process_dir, os.getpid())
        return ensure_certificates(_process_dir, names)


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


def _load_ca(
    certs: Certificates,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The CA certificate and key, or None when either is missing, they do not match, or the
    CA is about to expire."""
    if certs.ca_key_path is None or not (certs.ca_path.is_file() and certs.ca_key_path.is_file()):
        return None
    ca_cert = x509.load_pem_x509_certificate(certs.ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(certs.ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        return None
    if ca_key.public_key() != ca_cert.public_key() or not _valid_for_a_while(ca_cert):
        return None
    return ca_cert, ca_key


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` in one step (a reader sees the old file or the new one)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(data)
    if private:
        temp.chmod(0o600)
    os.replace(temp, path)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _generate(certs: Certificates, names: set[str]) -> None:
    """A new CA, and a server certificate from it for ``names``."""
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
    if certs.ca_key_path is not None:
        _write(certs.ca_key_path, _private_pem(ca_key), private=True)
    _write(certs.ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    _issue_server(certs, ca_cert, ca_key, names)


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in sorted(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _issue_server(
    certs: Certificates,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: set[str],
) -> None:
    """A server key and certificate for ``names``, signed by the CA (no longer valid than it)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(min(now + VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(certs.key_path, _private_pem(server_key), private=True)
    _write(certs.cert_path, server_cert.public_bytes(serialization.Encoding.PEM))
