"""`PUT /api/v0/settings/tls`: an admin's PEM chain and key, kept only if the key matches, the
certificate is valid now and its names cover the domain name; otherwise a problem saying why."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dockyard.api import tls
from tests.inprocess.conftest import API, Dockyard

pytestmark = pytest.mark.anyio
PATH = f"{API}/settings/tls"


def pair(name: str, days: int = 30, start_days: int = -1) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + dt.timedelta(days=start_days))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


async def test_a_valid_chain_is_kept_and_bad_ones_are_refused(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    assert (await client.put(f"{API}/settings/general", json={"domainName": "registry.example.test"})).status_code == 200
    chain, key = pair("registry.example.test")
    _, other_key = pair("registry.example.test")
    wrong_name = pair("elsewhere.example.test")
    expired = pair("registry.example.test", days=-1, start_days=-30)
    for body, reason in (({"certificateChain": chain, "privateKey": other_key}, "not the key"),
                         ({"certificateChain": wrong_name[0], "privateKey": wrong_name[1]}, "does not cover"),
                         ({"certificateChain": expired[0], "privateKey": expired[1]}, "not valid now"),
                         ({"certificateChain": "junk", "privateKey": key}, "not a PEM")):
        r = await client.put(PATH, json=body)
        assert r.status_code == 400 and reason in r.json()["detail"], r.text
        assert dockyard.services.secrets.get(tls.UPLOADED_CHAIN) is None  # nothing half-stored
    r = await client.put(PATH, json={"certificateChain": chain, "privateKey": key})
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == "CN=registry.example.test"
    assert dockyard.services.secrets.get(tls.UPLOADED_CHAIN) == chain
    # Never in the event log.
    assert not any("PRIVATE KEY" in str(e) for e in dockyard.events(20))
