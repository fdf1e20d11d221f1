"""Portal sign-in sessions, kept server-side in the metadata database.

A session is working state, not a fact about the registry: it lives in its own table beside
the read models (as the signing key does), never in the event log. What the log records is
the sign-in itself (through `Accounts.authenticate`, which also throttles failed attempts).

Contract:
- `create(user)` makes a new random session id (never reused, so a sign-in always gets a
  fresh id: no fixation) and a CSRF token; only the id's SHA-256 is stored.
- `get(session_id)` answers the session, or None when it is unknown, ended, or idle longer
  than `idle_seconds`; a hit slides the idle window (written at most once a minute).
- `end(session_id)` ends one session; `end_all(user)` every session of a user.
Every replica shares the table, so a session works on all of them and ends on all of them.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.projections.dialect import Dialect

_CREATE = ("CREATE TABLE IF NOT EXISTS portal_sessions (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, "
           "csrf TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, seen_at DOUBLE PRECISION NOT NULL)")
_TOUCH_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    username: str
    csrf: str


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self, datastore: Any, dialect: Dialect, idle_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._datastore = datastore
        self._dialect = dialect
        self.idle_seconds = idle_seconds
        self._clock = clock
        with dialect.creating(datastore) as cursor:
            cursor.execute(_CREATE)

    def _write(self, statement: str, params: dict[str, Any]) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._dialect.sql(statement), params)

    def create(self, username: str) -> Session:
        session = Session(secrets.token_urlsafe(32), username, secrets.token_urlsafe(32))
        now = self._clock()
        self._write("INSERT INTO portal_sessions (id_hash, username, csrf, created_at, seen_at) "
                    "VALUES (%(id)s, %(user)s, %(csrf)s, %(now)s, %(now)s)",
                    {"id": _hash(session.id), "user": username, "csrf": session.csrf, "now": now})
        return session

    def get(self, session_id: str) -> Session | None:
        if not session_id:
            return None
        key = _hash(session_id)
        with self._dialect.reading(self._datastore) as cursor:
            cursor.execute(self._dialect.sql(
                "SELECT username, csrf, seen_at FROM portal_sessions WHERE id_hash = %(id)s"), {"id": key})
            rows = cursor.fetchall()
        if not rows:
            return None
        now = self._clock()
        if now - rows[0]["seen_at"] > self.idle_seconds:
            self._write("DELETE FROM portal_sessions WHERE id_hash = %(id)s", {"id": key})
            return None
        if now - rows[0]["seen_at"] > _TOUCH_EVERY:
            self._write("UPDATE portal_sessions SET seen_at = %(now)s WHERE id_hash = %(id)s",
                        {"id": key, "now": now})
        return Session(session_id, rows[0]["username"], rows[0]["csrf"])

    def end(self, session_id: str) -> None:
        self._write("DELETE FROM portal_sessions WHERE id_hash = %(id)s", {"id": _hash(session_id)})

    def end_all(self, username: str) -> None:
        self._write("DELETE FROM portal_sessions WHERE username = %(user)s", {"user": username})

    def purge_idle(self) -> None:
        """Forget sessions idle past the limit (they are refused anyway; this keeps the table small)."""
        self._write("DELETE FROM portal_sessions WHERE seen_at < %(limit)s",
                    {"limit": self._clock() - self.idle_seconds})
