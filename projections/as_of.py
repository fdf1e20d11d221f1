"""The read models as they were at a log position: time travel by folding the log again.

`AsOf.at(position)` folds the events up to and including `position` — only the topics the
registry and identity views fold, manifests and blob links left out (no bytes are read back) —
through the very folds the live system uses (`projections.inline`), into a private in-memory
SQLite database, and answers with the same query objects (`RegistryQueries`,
`IdentityQueries`). So "as of" answers can differ from the live ones only by the events after
the position, and the access policy (`domain.access`) then decides on those facts exactly as it
decides today.

`at(position, repository=…, accounts=…)` answers questions about one repository (its row, tags,
team access, and the access of the named accounts to it) without folding the whole log: it
folds only the events those answers read — the repository's own and its tags' events, its
organisation's `Organization` and `Team` events, and the named accounts' `User` events — found
through the audit trail's indexes (repository, namespace). Every fold writes rows keyed by the
repository, organisation, team or account its event names, so the rows those answers read are
the very rows the whole fold would hold. The audit trail is a followed projection: when it has
not reached `position` yet, the whole log is folded as before.

`position_at(moment)` turns an RFC 3339 time into the position of the last event recorded at
or before it (the audit trail's `recorded_at`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import StoredEvent

from dockyard.projections import identity_view, registry_view
from dockyard.projections.audit_trail import TABLE as AUDIT
from dockyard.projections.audit_trail import AuditTrail, action_name, iso_utc
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
# The actions (audit trail names) of TOPICS, by what a scoped fold selects them on.
_ORGANIZATION_ACTIONS = tuple(action_name(t) for t in TOPICS if t.split(".")[1] in ("Team", "Organization"))
_USER_ACTIONS = tuple(action_name(t) for t in TOPICS if t.split(".")[1] == "User")


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
        self.registry_view = RegistryQueries(datastore, SQLITE)
        self.identity_view = IdentityQueries(datastore, SQLITE)


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

    def at(self, position: int, repository: str | None = None, accounts: tuple[str, ...] = ()) -> PastState:
        """The read models as they were right after the event at `position` was recorded.

        With `repository`, only what answers about that repository is folded (see the module's
        docstring): its row, tags and team access, its organisation's teams and members, and
        the accounts named in `accounts`; anything else the state is asked is then incomplete."""
        datastore = _MemoryDatastore()
        fold = {**registry_view.FOLDS, **identity_view.FOLDS}
        with datastore.transaction(commit=True) as cursor:
            for statement in registry_view.create_statements(SQLITE) + identity_view.create_statements(SQLITE):
                cursor.execute(statement)
            if repository is not None and self._audit_position() >= position:
                for event in self._scoped_events(position, repository, accounts):
                    for statement, params in fold[type(event)](event):
                        cursor.execute(SQLITE.sql(statement), params)
                return PastState(position, datastore)
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

    def _audit_position(self) -> int:
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql("SELECT position FROM projection_positions WHERE name = %(name)s"),
                           {"name": AuditTrail.name})
            rows = cursor.fetchall()
        return int(rows[0]["position"]) if rows else 0

    def _scoped_events(self, position: int, repository: str, accounts: tuple[str, ...]) -> list[Any]:
        """The events up to `position` that a scoped fold folds, in log order: one SELECT of the
        log joined to the audit rows that name the repository, its organisation or the accounts."""
        recorder = self.registry.recorder
        table, column = ((f"{self.datastore.schema}.{recorder.events_table_name}", "notification_id")
                         if self.dialect.name == "postgres" else (recorder.events_table_name, "rowid"))
        params: dict[str, Any] = {"position": position, "repository": repository,
                                  "namespace": repository.split("/", 1)[0]}

        def listed(prefix: str, values: tuple[str, ...]) -> str:
            params.update({f"{prefix}{i}": v for i, v in enumerate(values)})
            return ", ".join(f"%({prefix}{i})s" for i in range(len(values))) or "NULL"

        topics = listed("t", TOPICS)
        # Each condition is a range of one of the audit trail's (column, position) indexes: the
        # repository's, or the few identity actions' (`|| ''` keeps the namespace index, which
        # holds every tag event of the organisation, out of it).
        conditions = ["a.repository = %(repository)s",
                      f"((a.namespace || '') = %(namespace)s AND a.action IN ({listed('o', _ORGANIZATION_ACTIONS)}))"]
        if accounts:
            conditions.append(f"((a.namespace || '') IN ({listed('n', accounts)}) "
                              f"AND a.action IN ({listed('u', _USER_ACTIONS)}))")
        statement = (f"SELECT e.originator_id, e.originator_version, e.topic, e.state FROM {AUDIT} a "
                     f"JOIN {table} e ON e.{column} = a.position WHERE a.position <= %(position)s "
                     f"AND ({' OR '.join(conditions)}) AND e.topic IN ({topics}) ORDER BY a.position")
        with self.dialect.reading(self.datastore) as cursor:
            cursor.execute(self.dialect.sql(statement), params)
            rows = cursor.fetchall()
        to_event = self.registry.mapper.to_domain_event
        return [to_event(StoredEvent(originator_id=r["originator_id"], originator_version=r["originator_version"],
                                     topic=r["topic"], state=bytes(r["state"]))) for r in rows]
