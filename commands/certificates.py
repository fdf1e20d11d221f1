"""The rule an uploaded TLS certificate must meet before Dockyard serves it (Settings > TLS):
its key is the first certificate's, it is valid now, and its subjectAltName covers the domain
name. Shared by `/api/v0/settings/tls` and any other door an upload may come through."""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dockyard.domain.errors import InvalidRequest


def host_of(name: str) -> str:
    """The host of a domain name that may carry a port (`registry.example.com:5443`, `[::1]:5000`)."""
    if name.startswith("["):
        return name[1:name.index("]")]
    host, sep, port = name.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else name


def _covers(cert: x509.Certificate, host: str) -> bool:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        return ipaddress.ip_address(host) in names.get_values_for_type(x509.IPAddress)
    except ValueError:
        pass
    for dns in names.get_values_for_type(x509.DNSName):
        dns = dns.lower()
        if dns == host or (dns.startswith("*.") and host.count(".") >= 2 and host.split(".", 1)[1] == dns[2:]):
            return True
    return False


def check_uploaded(chain_pem: str, key_pem: str, name: str, now: dt.datetime | None = None) -> x509.Certificate:
    """The leaf of an uploaded PEM chain and key, if they can serve `name`: the key is the leaf's,
    the leaf is valid now and its subjectAltName covers the host. `InvalidRequest` saying why not."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError:
        raise InvalidRequest("certificateChain: not a PEM certificate chain") from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise InvalidRequest("privateKey: not an unencrypted PEM private key") from None
    leaf_cert = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            != leaf_cert.public_key().public_bytes(serialization.Encoding.DER, spki)):
        raise InvalidRequest("privateKey: it is not the key of the chain's first certificate")
    if not leaf_cert.not_valid_before_utc <= now < leaf_cert.not_valid_after_utc:
        raise InvalidRequest(f"certificateChain: not valid now (valid {leaf_cert.not_valid_before_utc.isoformat()} "
                             f"to {leaf_cert.not_valid_after_utc.isoformat()})")
    host = host_of(name)
    if not _covers(leaf_cert, host):
        raise InvalidRequest(f"certificateChain: its subjectAltName does not cover {host!r}")
    return leaf_cert
