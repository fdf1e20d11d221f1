"""Signing in: managed passwords (argon2id), LDAP, access tokens, and login throttling.

`Accounts.authenticate` is the one door for credentials, whatever the auth mode:
- a password of the form `dyt_…` is an access token of the named user;
- the initial `admin` always signs in with its managed password, in every mode, so an admin
  can never lock everyone out;
- in `ldap` mode every other user signs in against the directory, and appears as a user with
  role `none` on first login;
- in `managed` mode, argon2id hashes in the read model.
Unknown users and wrong passwords look alike (same answer, a hash verified either way).
Repeated failures per user and client address are throttled (429) and the lock-out recorded.

Verifying an argon2id hash costs tens of milliseconds by design; HTTP Basic sends the password
on every request, so a successful check is remembered briefly under a keyed digest of the
credentials (never the password itself), and parallel requests with the same credentials share
one check.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dockyard.commands.access_tokens import AccessTokens, is_access_token
from dockyard.commands.directory import DirectoryError, LdapConfig, LdapDirectory
from dockyard.commands.identity import Identity
from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal
from dockyard.domain.actor import ANONYMOUS_NAME, SYSTEM, Actor, current_actor
from dockyard.domain.errors import Conflict, InvalidRequest, TooManyRequests, Unavailable
from dockyard.domain.login import LoginGuard
from dockyard.projections.identity_queries import IdentityQueries

ADMIN = "admin"
# argon2id's cost for new password hashes: OWASP's Password Storage Cheat Sheet's first setting
# (19 MiB, 2 passes, 1 lane), not argon2-cffi's default (64 MiB, 3 passes, 4 lanes). Each check
# allocates its memory cost for its duration: at 64 MiB, one sign-in during a push took a worker
# from ~220 to ~290 MiB, and eight concurrent sign-ins half a GiB (benchmarks/RESULTS.md, session
# 7: memory). A hash keeps the parameters it was made with (they are written in it), so hashes
# made before still verify, at their own cost, until the password is next set.
PASSWORD_TIME_COST, PASSWORD_MEMORY_KIB, PASSWORD_LANES = 2, 19 * 1024, 1
# How long a verified password sign-in is remembered. A managed password's is re-read every
# RECHECK_SECONDS and compared with the hash it was checked against, so a password change, a
# deactivation or a role change made anywhere reaches it within seconds however long it is kept:
# kept long, since every `docker push` or `pull` asks a token with Basic credentials again and
# each argon2 check costs tens of milliseconds of CPU (benchmarks/RESULTS.md, session 7). A
# directory (LDAP) sign-in has no hash to compare: a password changed in the directory is noticed
# only when the remembered sign-in is forgotten, so it is kept briefly.
MANAGED_REMEMBER_SECONDS = 900.0
DIRECTORY_REMEMBER_SECONDS = 30.0
# How often a remembered sign-in re-reads its user (role, active, password): the delay with which
# a change made by another process reaches it — the schedule registry JWTs are re-checked on.
RECHECK_SECONDS = 5.0
# How long a sign-in waits for a parallel check of the same credentials before checking them itself.
_SHARED_CHECK_WAIT = 10.0
MAX_FAILURES = 5
FAILURE_WINDOW = 60.0
LOCKOUT = 60.0

auth_log = logging.getLogger("dockyard.auth")  # component `auth` of the logs


# A remembered password sign-in: (forget at, principal, the hash it was checked against, re-read at).
_Remembered = tuple[float, Principal, str, float]


def _throttled(remaining_seconds: float) -> TooManyRequests:
    return TooManyRequests("too many failed logins; try again later",
                           {"retryAfterSeconds": int(remaining_seconds) + 1})


class Accounts:
    def __init__(self, registry: Registry, identity_view: IdentityQueries, identity: Identity, tokens: AccessTokens,
                 ldap_bind_password: Callable[[], str] = lambda: "",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """`identity_view` is the identity read model, `identity` its commands; `monotonic`: the
        clock remembered sign-ins and throttling windows are measured by."""
        self.registry = registry
        self.identity_view = identity_view
        self.monotonic = monotonic
        self.identity = identity
        self.tokens = tokens
        self._ldap_bind_password = ldap_bind_password
        self._hasher = PasswordHasher(time_cost=PASSWORD_TIME_COST, memory_cost=PASSWORD_MEMORY_KIB,
                                      parallelism=PASSWORD_LANES)
        self._cache_key = os.urandom(32)
        self._verified: dict[bytes, _Remembered] = {}
        self._verifying: dict[bytes, threading.Event] = {}  # credentials being checked now, by key
        self._failures: dict[tuple[str, str], deque[float]] = {}
        # Told of each refused sign-in (user name, client address): the API's failed-login metric.
        self.failed_listeners: list[Callable[[str, str], None]] = []
        self._locked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        # A fixed hash to verify against for unknown users, so they cost the same as a wrong password.
        self._decoy = self._hasher.hash(secrets.token_hex(16))

    def hash_password(self, password: str) -> str:
        """The argon2id hash of a password that meets the policy (`Identity.check_password`)."""
        return self._hasher.hash(self.identity.check_password(password))

    # -- managed users: passwords are hashed here, never by a caller --------------------------

    def create_user(self, name: str, password: str, role: str) -> None:
        """A managed user with `password` (argon2id)."""
        self.identity.create_user(name, self.hash_password(password), role)

    def update_user(self, name: str, *, role: str | None = None, password: str | None = None,
                    active: bool | None = None) -> None:
        """Change a user's role, password or active flag. A password change, a deactivation or a
        role change also ends the user's refresh tokens (the credentials epoch moves on), and
        this process forgets the sign-ins it remembered."""
        password_hash = self.hash_password(password) if password is not None else None
        try:
            self.identity.update_user(name, role=role, password_hash=password_hash, active=active)
        finally:
            self.forget_cached()

    def ensure_admin(self, password: str | None) -> str | None:
        """Create the `admin` user on first start. Returns the generated password, if one was made."""
        if self.identity_view.user(ADMIN) is not None:
            return None
        generated = None
        if not password:
            password = generated = secrets.token_urlsafe(18)
        token = current_actor.set(SYSTEM)
        try:
            self.identity.create_user(ADMIN, self.hash_password(password), "admin")
        except Conflict:
            return None  # another process created it first
        finally:
            current_actor.reset(token)
        return generated

    def forget_cached(self) -> None:
        """Drop remembered logins (after a role, password or mode change)."""
        with self._lock:
            self._verified.clear()

    # -- the door ------------------------------------------------------------------------------

    def authenticate(self, name: str, password: str, address: str = "local") -> Principal | None:
        """The principal for these credentials, or None. `TooManyRequests` while throttled.

        What the attempt records (a lock-out, a directory user's first sign-in) says who and
        from where (rule 6): the caller is not authenticated yet, so `anonymous` at `address`
        (the directory user's own name once the directory accepted them)."""
        token = current_actor.set(Actor(ANONYMOUS_NAME, address) if address != "local" else current_actor.get())
        try:
            return self._authenticate(name, password, address)
        finally:
            current_actor.reset(token)

    def _authenticate(self, name: str, password: str, address: str) -> Principal | None:
        key = hmac.new(self._cache_key, f"{name}\x00{password}".encode(), hashlib.sha256).digest()
        now = self.monotonic()
        self._check_throttle(name, address, now)
        if (remembered := self._recall(key, now)) is not None:
            return remembered
        if is_access_token(password):  # never remembered: nothing to share with a parallel check
            return self._check(name, password, address, key, now)
        with self._lock:
            pending = self._verifying.get(key)
            if pending is None:
                self._verifying[key] = threading.Event()
        if pending is not None:
            # The same credentials are being checked right now (a client's parallel requests
            # once its remembered sign-in expired, e.g. a pull's token requests): wait for that
            # check instead of paying argon2 once per request. If it failed, check them here too,
            # so that every failure still counts towards the lock-out.
            pending.wait(_SHARED_CHECK_WAIT)
            if (remembered := self._recall(key, self.monotonic())) is not None:
                return remembered
            return self._check(name, password, address, key, now)
        try:
            return self._check(name, password, address, key, now)
        finally:
            with self._lock:
                self._verifying.pop(key).set()

    def _recall(self, key: bytes, now: float) -> Principal | None:
        """The remembered sign-in under `key` as it stands now, or None."""
        with self._lock:
            hit = self._verified.get(key)
        return self._remembered(key, hit, now) if hit is not None and hit[0] > now else None

    def _check(self, name: str, password: str, address: str, key: bytes, now: float) -> Principal | None:
        """Verify the credentials (argon2, the directory or the access token), remember a
        password sign-in that succeeded, count one that failed."""
        self._check_recorded_throttle(name, address)
        principal, password_hash = self._verify(name, password)
        if principal is None:
            self._failed(name, address, now)
            return None
        if principal.token_id is None:  # token use is checked every time (revocation, expiry)
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                remember = MANAGED_REMEMBER_SECONDS if password_hash else DIRECTORY_REMEMBER_SECONDS
                self._verified[key] = (now + remember, principal, password_hash, now + RECHECK_SECONDS)
        return principal

    def _remembered(self, key: bytes, hit: _Remembered, now: float) -> Principal | None:
        """A remembered sign-in as it stands now: every RECHECK_SECONDS the user is read again,
        so a role change, deactivation or password change made by another process or replica
        reaches it within seconds (this process forgets at once: `forget_cached`). None: verify
        the credentials again."""
        expires, principal, password_hash, reread_at = hit
        if now < reread_at:
            return principal
        row = self.identity_view.user(principal.name or "")
        if row is None or not row["active"] or row["password_hash"] != password_hash:
            with self._lock:
                self._verified.pop(key, None)
            return None
        current = Principal(row["name"], row["role"])
        with self._lock:
            self._verified[key] = (expires, current, password_hash, now + RECHECK_SECONDS)
        return current

    def _verify(self, name: str, password: str) -> tuple[Principal | None, str]:
        """The principal for the credentials (None if wrong), and the password hash they were
        checked against (empty for access tokens and directory users)."""
        if is_access_token(password):
            return self._verify_token(name, password), ""
        mode = self.identity_view.auth_settings()
        if mode["mode"] == "ldap" and name != ADMIN:
            return self._verify_ldap(name, password, mode["ldap"]), ""
        row = self.identity_view.user(name)
        try:
            if row is None or not row["active"] or not row["password_hash"]:
                self._hasher.verify(self._decoy, password or "-")
                return None, ""
            self._hasher.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None, ""
        return Principal(row["name"], row["role"]), row["password_hash"]

    def _verify_token(self, name: str, password: str) -> Principal | None:
        row = self.tokens.check(name, password)
        return self._principal(name, row) if row else None

    def principal_of(self, name: str, token_id: str | None = None) -> Principal | None:
        """The principal `name` is now — signed in with access token `token_id`, if given — or
        None if the user is gone or inactive, or the token no longer usable (revoked, expired).
        What a registry or refresh JWT names is re-read through this."""
        if token_id is None:
            return self._principal(name, None)
        row = self.tokens.usable(token_id, name)
        return self._principal(name, row) if row else None

    def _principal(self, name: str, token: dict[str, Any] | None) -> Principal | None:
        user = self.identity_view.user(name)
        if user is None or not user["active"]:
            return None
        if token is None:
            return Principal(name, user["role"])
        return Principal(name, user["role"], token_id=token["id"], token_level=token["level"],
                         token_repositories=tuple(token["repositories"]))

    def directory_changed_since(self, name: str, since: datetime) -> bool:
        """For a directory user in `ldap` mode: whether their directory entry is gone or changed
        (a password change included) at or after `since` — Dockyard never sees a password the
        directory changes, so a refresh token issued before must be checked here. False for
        every other user (their changes are events: `credentials_epoch`). `Unavailable` (503)
        when the directory cannot be asked: nothing is ended on a guess."""
        mode = self.identity_view.auth_settings()
        user = self.identity_view.user(name)
        if mode["mode"] != "ldap" or name == ADMIN or user is None or user["source"] != "ldap":
            return False
        directory = LdapDirectory(LdapConfig.from_settings(mode["ldap"], self._ldap_bind_password()))
        try:
            return directory.changed_since(name, since)
        except DirectoryError as exc:
            auth_log.warning("LDAP: cannot check %s's directory entry: %s", name, exc)
            raise Unavailable("the directory cannot be reached; retry later") from None

    def _verify_ldap(self, name: str, password: str, settings: dict) -> Principal | None:
        directory = LdapDirectory(LdapConfig.from_settings(settings, self._ldap_bind_password()))
        if not directory.authenticate(name, password):
            return None
        row = self.identity_view.user(name)
        if row is None:  # first login of a directory user: an account with no global role
            token = current_actor.set(Actor(name, current_actor.get().address))
            try:
                self.identity.create_user(name, "", "none", source="ldap")
            except (Conflict, InvalidRequest):
                pass
            finally:
                current_actor.reset(token)
            row = self.identity_view.user(name)
        if row is None or not row["active"]:
            return None
        return Principal(row["name"], row["role"])

    # -- throttling ----------------------------------------------------------------------------

    def _check_throttle(self, name: str, address: str, now: float) -> None:
        with self._lock:
            until = self._locked.get((name, address))
        if until is not None and until > now:
            raise _throttled(until - now)

    def _check_recorded_throttle(self, name: str, address: str) -> None:
        """Honour a lock-out that another process or replica recorded (`LoginGuard.Throttled`).

        Failures are counted per process, so N processes allow up to N×MAX_FAILURES attempts
        a window; the first lock-out then holds everywhere. Read before every password check
        that the cache does not answer, which costs far less than the check itself (argon2).
        """
        guard = self.registry.load(LoginGuard, LoginGuard.create_id(name, address))
        if guard is None or guard.until is None:
            return
        remaining = (datetime.fromisoformat(guard.until) - datetime.now(UTC)).total_seconds()
        if remaining > 0:
            with self._lock:
                self._locked[(name, address)] = self.monotonic() + remaining
            raise _throttled(remaining)

    def _failed(self, name: str, address: str, now: float) -> None:
        auth_log.warning("sign-in refused for %r from %s", name, address)
        for listener in self.failed_listeners:
            listener(name, address)
        with self._lock:
            window = self._failures.setdefault((name, address), deque())
            window.append(now)
            while window and window[0] < now - FAILURE_WINDOW:
                window.popleft()
            if len(window) < MAX_FAILURES:
                return
            self._locked[(name, address)] = now + LOCKOUT
            failures = len(window)
            window.clear()
        until = (datetime.now(UTC) + timedelta(seconds=LOCKOUT)).isoformat()

        def record() -> None:  # another process may record a lock-out of the pair at the same time
            guard = self.registry.load(LoginGuard, LoginGuard.create_id(name, address)) or LoginGuard(
                user=name, address=address)
            guard.throttle(name, address, failures, until)
            self.registry.save(guard)

        self.registry.retrying(record)
