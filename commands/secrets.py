"""Secrets the registry keeps beside its metadata, never in the event log (which auditors
export): the key that signs registry tokens, the audit checkpoint key, the LDAP bind password.

Every process and replica must see the same values, so they live in the metadata database.
The first process to start inserts the signing key; `ON CONFLICT DO NOTHING` makes concurrent
first starts agree.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from dockyard.commands.registry import Registry

_CREATE = "CREATE TABLE IF NOT EXISTS signing_keys (id TEXT PRIMARY KEY, private_pem TEXT NOT NULL)"
_INSERT = ("INSERT INTO signing_keys (id, private_pem) VALUES (%(id)s, %(value)s) "
           "ON CONFLICT (id) DO NOTHING")
_UPSERT = ("INSERT INTO signing_keys (id, private_pem) VALUES (%(id)s, %(value)s) "
           "ON CONFLICT (id) DO UPDATE SET private_pem = excluded.private_pem")
_SELECT = "SELECT private_pem FROM signing_keys WHERE id = %(id)s"
TOKEN_KEY = "token"
LDAP_BIND_PASSWORD = "ldap-bind-password"
AUDIT_KEY = "audit-checkpoint"


class SecretStore:
    def __init__(self, registry: Registry) -> None:
        self._datastore = registry.datastore
        self._dialect = registry.dialect
        with self._dialect.creating(self._datastore) as cursor:
            cursor.execute(_CREATE)

    def get(self, secret_id: str) -> str | None:
        with self._dialect.reading(self._datastore) as cursor:
            cursor.execute(self._dialect.sql(_SELECT), {"id": secret_id})
            rows = cursor.fetchall()
        return rows[0]["private_pem"] if rows else None

    def put(self, secret_id: str, value: str) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._dialect.sql(_UPSERT), {"id": secret_id, "value": value})

    def first(self, secret_id: str, value: str) -> str:
        """The value stored under `secret_id`, storing `value` if there is none: the first
        process to get here wins and every other one (replicas included) reads its value."""
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._dialect.sql(_INSERT), {"id": secret_id, "value": value})
            cursor.execute(self._dialect.sql(_SELECT), {"id": secret_id})
            return str(cursor.fetchall()[0]["private_pem"])

    def _key(self, secret_id: str, generate: Any) -> Any:
        """The private key stored under `secret_id`; the first caller's `generate()` wins."""
        pem = generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()).decode()
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._dialect.sql(_INSERT), {"id": secret_id, "value": pem})
            cursor.execute(self._dialect.sql(_SELECT), {"id": secret_id})
            stored = cursor.fetchall()[0]["private_pem"]
        return serialization.load_pem_private_key(stored.encode(), password=None)

    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        """The registry's ES256 token-signing key, creating it on first use."""
        key = self._key(TOKEN_KEY, lambda: ec.generate_private_key(ec.SECP256R1()))
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def audit_signing_key(self) -> ed25519.Ed25519PrivateKey:
        """The Ed25519 key that signs audit checkpoints (`projections.checkpoints`), created on
        first use; kept here, never in the log, so an auditor's export cannot forge them."""
        key = self._key(AUDIT_KEY, ed25519.Ed25519PrivateKey.generate)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key

    def ldap_bind_password(self) -> str:
        return self.get(LDAP_BIND_PASSWORD) or ""


def key_id(key: ec.EllipticCurvePrivateKey) -> str:
    """A libtrust-style key id (what Docker's token spec puts in `kid`)."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, 48, 4))
