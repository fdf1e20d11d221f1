"""The read models as they were at a log position: time travel by folding the log again.

`AsOf.at(position)` folds the events up to and including `position` — only the topics the
registry and identity views fold, manifests and blob links left out (no bytes are read back) —
through the very folds the live system uses (`projections.inline`), into a private in-memory
SQLite database, and answers with the same query objects (`RegistryQueries`,
`IdentityQueries`). So "as of" answers can differ from the live ones only by the events after
the position, and the access policy (`domain.access`) then decides on those facts exactly as it
decides today.

`position_at(moment)` turns an RFC 3339 time into the position of the last event recorded at
or before it (the audit trail's `recorded_at`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from dockyard.projections import identity_view, registry_view
from dockyard.projections.audit_trail import TABLE as AUDIT, iso_utc
from dockyard.projections.dialect import SQLITE, Dialect
from dockyard.projections.identity_queries import IdentityQueries
from dockyard.projections.registry_queries import RegistryQueries

# What "as of" answers need: repositories and their tags, accounts, teams, members, grants.
TOPICS = tuple(f"dockyard.{name}" for name in (
    "Repository.Created", "Repository.Deleted", "Repository.Restored", "Repository.VisibilityChanged",
    "Repository.DescriptionChanged", "Repository.TeamAccessGranted", "Repository.TeamAccessRevoked",
    "Tag.Moved", "Tag.Deleted", "User.Created", "User.RoleChanged", "User.Deactivated", "User.Activated",
    "Organization.Created", "Team.Created", "Team.MemberAdded", "Team.MemberRemoved", "Team.Deleted",
    "Team.Recreated"))
PAGE = 5000


class _MemoryDatastore:
    """Just what `Dialect.reading` and the query objects use of a datastore."""

    def __init__(self) -> None:
        self.connection = sqlite3.connect(":memory:", check_same_thread=False)
        self.connection.row_factory = sqlite3.Row

    @contextmanager
    def transaction(self, commit: bool = False) -> Iterator[sqlite3.Cursor]:
        cursor = self.connection.cursor()
        try:
            yield cursor
            if commit:
                self.connection.commit()
        finally:
            cursor.close()


class PastState:
    """The registry and identity read models at `position`."""

    def __init__(self, position: int, datastore: _MemoryDatastore) -> None:
        self.position = position
        self.queries = RegistryQueries(datastore, SQLITE)
        self.identity = IdentityQueries(datastore, SQLITE)


class AsOf:
    def __init__(self, registry: Any, datastore: Any, dialect: Dialect) -> None:
        self.registry, self.datastore, self.dialect = registry, datastore, dialect

    def position_at(self, moment: str | datetime) -> int:
        """The position of the last event recorded at or before `moment` (0: before any)."""
        when = moment if isinstance(moment, datetime) else datetime.fromisoformat(moment)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(f"SELECT MAX(position) AS p FROM {AUDIT} WHERE recorded_at <= %(at)s"),
                           {"at": iso_utc(when)})
            rows = cursor.fetchall()
        return int(rows[0]["p"] or 0) if rows else 0

    def at(self, position: int) -> PastState:
        """The read models as they were right after the event at `position` was recorded."""
        datastore = _MemoryDatastore()
        fold = {**registry_view.FOLDS, **identity_view.FOLDS}
        with datastore.transaction(commit=True) as cursor:
            for statement in registry_view.create_statements(SQLITE) + identity_view.create_statements(SQLITE):
                cursor.execute(statement)
            after = 0
            while after < position:
                notes = self.registry.recorder.select_notifications(
                    after, PAGE, stop=position, topics=TOPICS, inclusive_of_start=False)
                if not notes:
                    break
                for note in notes:
                    event = self.registry.mapper.to_domain_event(note)
                    for statement, params in fold[type(event)](event):
                        cursor.execute(SQLITE.sql(statement), params)
                after = notes[-1].id
                if len(notes) < PAGE:
                    break
        return PastState(position, datastore)
