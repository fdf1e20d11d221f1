"""The two SQL dialects read models are written in: SQLite (embedded) and PostgreSQL.

Statements are written once with `%(name)s` parameters and portable SQL (UPSERT via
`ON CONFLICT ... DO UPDATE`, which both speak); `Dialect.sql` adapts them for sqlite3.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_PARAM = re.compile(r"%\((\w+)\)s")

# The PostgreSQL advisory lock key that serialises schema changes (any fixed bigint no other lock
# of ours uses): every worker of every replica creates its tables on start, and two concurrent
# `CREATE ... IF NOT EXISTS` of one name fail on a duplicate catalogue key (pg_type, pg_extension).
SCHEMA_LOCK_KEY = 0x646F636B79617264  # b"dockyard"


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" | "postgres"

    @property
    def blob(self) -> str:
        return "BLOB" if self.name == "sqlite" else "BYTEA"

    @property
    def bigint(self) -> str:
        return "INTEGER" if self.name == "sqlite" else "BIGINT"

    def sql(self, statement: str) -> str:
        return _to_sqlite(statement) if self.name == "sqlite" else statement

    @contextmanager
    def reading(self, datastore: Any) -> Iterator[Any]:
        """A cursor for read-only statements on `datastore`; each sees everything committed
        before it runs.

        On PostgreSQL this is the pool's autocommit connection, so a SELECT costs one round
        trip instead of BEGIN/SELECT/ROLLBACK: under READ COMMITTED a transaction would give
        several statements no common snapshot anyway. On SQLite it is a read transaction,
        which costs nothing over the wire and does give one snapshot.
        """
        if self.name == "postgres":
            with datastore.get_connection() as connection:
                yield connection.cursor()
        else:
            with datastore.transaction(commit=False) as cursor:
                yield cursor


    @contextmanager
    def creating(self, datastore: Any) -> Iterator[Any]:
        """A committing transaction for `CREATE`/`ALTER` statements run at start. On PostgreSQL it
        first takes the schema advisory lock for the transaction, so processes starting at once
        on a fresh database create each table once, one after another (`SCHEMA_LOCK_KEY`)."""
        with datastore.transaction(commit=True) as cursor:
            if self.name == "postgres":
                cursor.execute("SELECT pg_advisory_xact_lock(%(key)s)", {"key": SCHEMA_LOCK_KEY})
            yield cursor


@lru_cache(maxsize=512)
def _to_sqlite(statement: str) -> str:
    return _PARAM.sub(r":\1", statement)


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgres")
