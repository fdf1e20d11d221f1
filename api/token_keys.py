"""The key that signs registry tokens: created once, kept in the metadata database.

Every process and replica must verify tokens any other one issued, so the key lives beside
the metadata (not in the event log, which is exported to auditors). The first process to
start inserts one; `ON CONFLICT DO NOTHING` makes concurrent first starts agree.
"""

from __future__ import annotations

import hashlib
import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.commands.registry import Registry

_CREATE = "CREATE TABLE IF NOT EXISTS signing_keys (id TEXT PRIMARY KEY, private_pem TEXT NOT NULL)"
_INSERT = ("INSERT INTO signing_keys (id, private_pem) VALUES (%(id)s, %(pem)s) "
           "ON CONFLICT (id) DO NOTHING")
_SELECT = "SELECT private_pem FROM signing_keys WHERE id = %(id)s"
KEY_ID = "token"


def load_or_create(registry: Registry) -> ec.EllipticCurvePrivateKey:
    """The registry's ES256 token-signing key, creating it on first use."""
    candidate = ec.generate_private_key(ec.SECP256R1())
    pem = candidate.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    dialect = registry.dialect
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(_CREATE)
        cursor.execute(dialect.sql(_INSERT), {"id": KEY_ID, "pem": pem})
        cursor.execute(dialect.sql(_SELECT), {"id": KEY_ID})
        stored = cursor.fetchall()[0]["private_pem"]
    key = serialization.load_pem_private_key(stored.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def key_id(key: ec.EllipticCurvePrivateKey) -> str:
    """A libtrust-style key id (what Docker's token spec puts in `kid`)."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, 48, 4))
