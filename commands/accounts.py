"""Accounts: password hashing (argon2id), the first admin, and checking credentials.

Verifying an argon2id hash costs tens of milliseconds by design; HTTP Basic sends the password
on every request, so a successful check is remembered briefly under a keyed digest of the
credentials (never the password itself).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal
from dockyard.domain.actor import SYSTEM, current_actor

ADMIN = "admin"
_CACHE_SECONDS = 60.0


class Accounts:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._hasher = PasswordHasher()
        self._cache_key = os.urandom(32)
        self._verified: dict[bytes, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        # A fixed hash to verify against for unknown users, so they cost the same as a wrong password.
        self._decoy = self._hasher.hash(secrets.token_hex(16))

    def hash_password(self, password: str) -> str:
        return self._hasher.hash(password)

    def ensure_admin(self, password: str | None) -> str | None:
        """Create the `admin` user on first start. Returns the generated password, if one was made."""
        if self.registry.user_exists(ADMIN):
            return None
        generated = None
        if not password:
            password = generated = secrets.token_urlsafe(18)
        token = current_actor.set(SYSTEM)
        try:
            self.registry.create_user(ADMIN, self.hash_password(password), "admin")
        finally:
            current_actor.reset(token)
        return generated

    def authenticate(self, name: str, password: str) -> Principal | None:
        """The principal for these credentials, or None. Unknown users and wrong passwords look alike."""
        key = hmac.new(self._cache_key, f"{name}\x00{password}".encode(), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._verified.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = self.registry.identity.user(name)
        try:
            if row is None or not row["active"]:
                self._hasher.verify(self._decoy, password or "-")
                return None
            self._hasher.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        principal = Principal(row["name"], row["role"])
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = (now + _CACHE_SECONDS, principal)
        return principal
