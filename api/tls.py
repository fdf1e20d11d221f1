"""HTTPS served by Dockyard itself (`dockyard serve --tls`), as DTR did out of the box.

With `--tls-cert/--tls-key` the given PEM chain and key are used as they are. Otherwise Dockyard
makes its own: a local certificate authority, created once and kept in the secret store (so
every replica on one database signs with the same CA and a client trusts it once), and a leaf
certificate it signs whose subjectAltName is the domain name (Settings > General) or, until one
is set, the listen host. The chain served is leaf then CA, so `openssl s_client -showcerts`
shows the CA to trust (the lab's Task 4).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dockyard.commands.certificates import host_of
from dockyard.commands.secrets import SecretStore

log = logging.getLogger("dockyard.api")
CA_KEY = "tls-ca-key"
CA_CERT = "tls-ca-cert"
LEAF_DAYS = 397  # the longest validity browsers and clients accept for a leaf


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def local_ca(secrets: SecretStore) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The registry's own CA: made by the first process that needs it, read by every other."""
    key = serialization.load_pem_private_key(
        secrets.first(CA_KEY, _pem_key(ec.generate_private_key(ec.SECP256R1()))).encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dockyard local CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard")])
    candidate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                 .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                 .not_valid_after(now + dt.timedelta(days=3650))
                 .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                 .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False,
                                              encipher_only=False, decipher_only=False), critical=True)
                 .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                 .sign(key, hashes.SHA256()))
    stored = secrets.first(CA_CERT, candidate.public_bytes(serialization.Encoding.PEM).decode())
    return key, x509.load_pem_x509_certificate(stored.encode())


def _san(name: str) -> x509.GeneralName:
    name = host_of(name)
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return x509.DNSName(name)


def leaf(secrets: SecretStore, name: str) -> tuple[str, str]:
    """(chain PEM: leaf then CA, key PEM) of a fresh certificate for `name` (a host name or an
    IP address), signed by the local CA."""
    ca_key, ca_cert = local_ca(secrets)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_of(name))]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName([_san(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    return chain.decode(), _pem_key(key)


def write_pair(directory: Path, chain: str, key: str) -> tuple[str, str]:
    """Write the chain and key where the server reads them (the key readable by its owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_text(chain)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return str(cert_path), str(key_path)


# -- the certificate follows the domain name, in every worker and replica -----------------------

_served: ssl.SSLContext | None = None  # this worker's server context (set by context_factory)


def context_factory(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory`: the usual context, remembered so that `CertificateFollower`
    can load a new certificate into it. New handshakes get the new certificate; connections
    already open (a pull in progress) keep theirs: nothing is dropped, no worker restarts."""
    global _served
    _served = default()
    return _served


class CertificateFollower:
    """Re-issue the generated certificate when the domain name changes (Settings > General),
    checking every `interval` seconds: every process of every replica does, so each serves the
    new name within that time, signed by the one CA in the shared secret store."""

    def __init__(self, secrets: SecretStore, domain_name: Callable[[], str], fallback: str, directory: Path,
                 interval: float = 2.0) -> None:
        self.secrets, self.domain_name, self.fallback = secrets, domain_name, fallback
        self.directory = directory / f"worker-{os.getpid()}"
        self.interval = interval
        self.serving = domain_name() or fallback  # what `dockyard serve` issued before the workers started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-follower", daemon=True)

    def start(self) -> CertificateFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Load the certificate an admin uploaded, or issue one for the current name if that
        changed; whether a new one was loaded."""
        if _served is None:
            return False
        uploaded = self.secrets.get(UPLOADED_CHAIN)
        if uploaded:
            if uploaded == self.serving:
                return False
            cert_path, key_path = write_pair(self.directory, uploaded, self.secrets.get(UPLOADED_KEY) or "")
            _served.load_cert_chain(cert_path, key_path)
            log.info("TLS certificate now the one an admin uploaded")
            self.serving = uploaded
            return True
        name = self.domain_name() or self.fallback
        if name == self.serving:
            return False
        chain, key = leaf(self.secrets, name)
        cert_path, key_path = write_pair(self.directory, chain, key)
        _served.load_cert_chain(cert_path, key_path)
        log.info("TLS certificate now for %s (was %s)", name, self.serving)
        self.serving = name
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 — keep serving the old certificate; try again next time
                log.exception("TLS certificate for the new domain name could not be issued")


# -- a certificate an admin uploads ------------------------------------------------------------

UPLOADED_CHAIN = "tls-uploaded-chain"
UPLOADED_KEY = "tls-uploaded-key"
