"""The two SQL dialects read models are written in: SQLite (embedded) and PostgreSQL.

Statements are written once with `%(name)s` parameters and portable SQL (UPSERT via
`ON CONFLICT ... DO UPDATE`, which both speak); `Dialect.sql` adapts them for sqlite3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_PARAM = re.compile(r"%\((\w+)\)s")


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


@lru_cache(maxsize=512)
def _to_sqlite(statement: str) -> str:
    return _PARAM.sub(r":\1", statement)


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgres")
