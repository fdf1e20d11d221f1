"""Reading the audit trail: filtered pages (keyset on position) and whole-result streams.

Visibility is decided by the caller (`api/`, the CLI) from the access rules and passed in as
`AuditScope`: everything (global admins, the CLI), or a user's own actions plus the events of
the organisations whose `owners` team they belong to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dockyard.projections.audit_trail import COLUMNS, TABLE, iso_utc
from dockyard.projections.dialect import Dialect

OWNERS = "owners"
STREAM_PAGE = 2000


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    namespace: str | None = None
    repository: str | None = None
    action: str | None = None
    since: str | None = None  # ISO 8601, inclusive
    until: str | None = None  # ISO 8601, exclusive
    after: int = 0  # position


@dataclass(frozen=True)
class AuditScope:
    """None `user`: everything. Otherwise the user's own actions and `organizations`' events."""

    user: str | None = None
    organizations: tuple[str, ...] = ()


EVERYTHING = AuditScope()


class AuditQueries:
    def __init__(self, datastore: Any, dialect: Dialect, table: str = TABLE) -> None:
        self.datastore, self.dialect, self.table = datastore, dialect, table

    def owned_organizations(self, user: str) -> tuple[str, ...]:
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(
                "SELECT organization FROM team_members WHERE team = %(owners)s AND member = %(user)s "
                "ORDER BY organization"), {"owners": OWNERS, "user": user})
            return tuple(r["organization"] for r in cursor.fetchall())

    def scope_for(self, user: str | None, is_admin: bool) -> AuditScope:
        if is_admin:
            return EVERYTHING
        if user is None:
            return AuditScope(user="", organizations=())  # anonymous callers acted as `anonymous` only
        return AuditScope(user=user, organizations=self.owned_organizations(user))

    def _where(self, f: AuditFilter, scope: AuditScope) -> tuple[str, dict[str, Any]]:
        clauses = ["position > %(after)s"]
        params: dict[str, Any] = {"after": f.after}
        for column in ("actor", "namespace", "repository", "action"):
            value = getattr(f, column)
            if value is not None:
                clauses.append(f"{column} = %({column})s")
                params[column] = value
        if f.since is not None:
            clauses.append("recorded_at >= %(since)s")
            params["since"] = iso_utc(f.since)
        if f.until is not None:
            clauses.append("recorded_at < %(until)s")
            params["until"] = iso_utc(f.until)
        if scope.user is not None:
            visible = ["actor = %(scope_user)s"]
            params["scope_user"] = scope.user
            if scope.organizations:
                names = [f"%(scope_org{i})s" for i in range(len(scope.organizations))]
                visible.append(f"namespace IN ({', '.join(names)})")
                params.update({f"scope_org{i}": org for i, org in enumerate(scope.organizations)})
            clauses.append("(" + " OR ".join(visible) + ")")
        return " AND ".join(clauses), params

    def page(self, f: AuditFilter, scope: AuditScope, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` rows after `f.after`, in log order."""
        where, params = self._where(f, scope)
        params["limit"] = limit
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(
                f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE {where} ORDER BY position LIMIT %(limit)s"),
                params)
            return [dict(r) for r in cursor.fetchall()]

    def latest(self, f: AuditFilter, scope: AuditScope, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        """Up to `limit` rows, newest first, before position `before` (all when None): what a
        person reading the trail looks at first (the portal's Audit tab and a repository's activity)."""
        where, params = self._where(f, scope)
        params["limit"] = limit
        if before is not None:
            where += " AND position < %(before)s"
            params["before"] = before
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(
                f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE {where} ORDER BY position DESC "
                "LIMIT %(limit)s"), params)
            return [dict(r) for r in cursor.fetchall()]

    def stream(self, f: AuditFilter, scope: AuditScope, page: int = STREAM_PAGE) -> Iterator[dict[str, Any]]:
        """Every matching row, in log order, one page in memory at a time."""
        after = f.after
        while True:
            rows = self.page(AuditFilter(f.actor, f.namespace, f.repository, f.action, f.since, f.until, after),
                             scope, page)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1]["position"]

    def tag_history(self, repository: str, tag: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Every move and delete of `repository:tag` after position `after`, oldest first, at most
        `limit` (the rows' `details` hold each move's `previous` digest)."""
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(
                f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE repository = %(repository)s AND tag = %(tag)s "
                "AND action IN ('tag.moved', 'tag.deleted') AND position > %(after)s ORDER BY position "
                "LIMIT %(limit)s"), {"repository": repository, "tag": tag, "after": after, "limit": limit})
            return [dict(r) for r in cursor.fetchall()]

    def count(self) -> int:
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(f"SELECT COUNT(*) AS n FROM {self.table}")
            return int(cursor.fetchall()[0]["n"])
