"""Where the event log lives, said the way a person names it, and whether one is there.

`dockyard serve` creates its event log on first start; every other `dockyard` verb works on an
existing one. Opening a store (`event_store_env` + `Registry`) creates what is missing, so an
admin verb run from the wrong folder, or with a mistyped database name, would silently start an
empty registry. `missing_event_log` is asked first, and `describe` is what the verbs print.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

# The eventsourcing library names an application's events table after the application
# (`Registry` -> `registry_events`); the SQLite file name is chosen in `event_store_env`.
EVENTS_TABLE = "registry_events"
SQLITE_FILE = "dockyard.db"


def sqlite_path(data_dir: str) -> str:
    return os.path.join(os.path.abspath(data_dir), SQLITE_FILE)


def _postgres_name(database_url: str) -> str:
    """`NAME on HOST:PORT` (never the password)."""
    url = urlparse(database_url)
    return f"{unquote(url.path.lstrip('/')) or 'dockyard'} on {url.hostname or '127.0.0.1'}:{url.port or 5432}"


def describe(data_dir: str, database_url: str | None) -> str:
    """The event log a verb works on, e.g. `SQLite /srv/data/dockyard.db`."""
    if database_url:
        return f"PostgreSQL database {_postgres_name(database_url)}"
    return f"SQLite {sqlite_path(data_dir)}"


def missing_event_log(data_dir: str, database_url: str | None, connect_timeout: int = 5) -> str | None:
    """Why there is no Dockyard event log where the settings point, or None when there is one.

    SQLite: the data directory and its `dockyard.db` must exist. PostgreSQL: the database must
    answer and hold the events table. Nothing is created either way.
    """
    if not database_url:
        directory, path = os.path.abspath(data_dir), sqlite_path(data_dir)
        if not os.path.isdir(directory):
            return f"no data directory {directory} (looked for {path})"
        if not os.path.isfile(path):
            return f"no Dockyard event log in {directory} (looked for {path})"
        return None
    problem = database_unreachable(database_url, connect_timeout)
    if problem:
        return problem
    import psycopg

    with psycopg.connect(database_url, connect_timeout=connect_timeout) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (EVENTS_TABLE,)).fetchone()
    if not found or found[0] is None:
        return f"PostgreSQL database {_postgres_name(database_url)} holds no Dockyard event log " \
               f"(looked for table {EVENTS_TABLE})"
    return None


def database_unreachable(database_url: str, connect_timeout: int = 5) -> str | None:
    """Why the PostgreSQL database at `database_url` cannot be opened, or None when it can."""
    import psycopg

    if urlparse(database_url).scheme not in ("postgres", "postgresql"):
        return (f"not a PostgreSQL URL: {database_url.split('@')[-1]} "
                "(expected postgresql://user:password@host:port/dbname)")
    try:
        psycopg.connect(database_url, connect_timeout=connect_timeout).close()
    except psycopg.Error as exc:
        # libpq names the reason after its last "failed: " ("FATAL:  database "x" does not exist",
        # "Connection refused").
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0].rsplit(" failed: ", 1)[-1] if lines else type(exc).__name__
        return f"cannot open PostgreSQL database {_postgres_name(database_url)}: {reason}"
    return None
