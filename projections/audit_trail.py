"""The audit trail: one row per event, for "who did what, when, from where, to which image".

A followed projection (`projections.runner`): it folds every topic, reads only the stored
event (no clock, no other table), so a rebuild gives the same rows. Columns: position, time,
action (a stable name derived from the stored topic: `dockyard.Tag.Moved` -> `tag.moved`,
`dockyard.Team.MemberAdded` -> `team.member_added`), actor, client address, access token,
namespace, repository, tag, digest, and the event's remaining facts as JSON `details` (never a
password or token hash, nor a manifest's bytes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from dockyard.projections.dialect import Dialect
from dockyard.projections.runner import Recorded

TABLE = "audit_events"
COLUMNS = ("position", "recorded_at", "action", "actor", "client_address", "token", "namespace", "repository",
           "tag", "digest", "details")
# Facts that say who and where go to their own columns; secrets and bulky bytes go nowhere.
_OMITTED = frozenset({"timestamp", "actor", "client_address", "token", "originator_topic",
                      "password_hash", "secret_hash", "payload"})
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@lru_cache(maxsize=1024)
def action_name(topic: str) -> str:
    """`dockyard.Tag.Moved` -> `tag.moved`; `dockyard.AccessToken.Created` -> `access_token.created`."""
    parts = topic.split(".")
    if len(parts) == 3 and parts[0] == "dockyard":
        return f"{_CAMEL.sub('_', parts[1]).lower()}.{_CAMEL.sub('_', parts[2]).lower()}"
    return topic.lower()


def _aggregate(topic: str) -> str:
    parts = topic.split(".")
    return parts[1] if len(parts) == 3 else ""


def row(event: Recorded) -> dict[str, Any]:
    """The audit row for one stored event."""
    state = event.state
    aggregate = _aggregate(event.topic)
    repository = state.get("repository")
    tag = digest = None
    namespace = None
    if aggregate == "Repository":
        repository = state.get("name")
    elif aggregate == "Tag":
        tag = state.get("name")
    elif aggregate in ("Team",):
        namespace = state.get("organization")
    elif aggregate in ("User", "Organization"):
        namespace = state.get("name")
    if aggregate in ("Tag", "Manifest", "BlobLink"):
        digest = state.get("digest")
    if repository and namespace is None:
        namespace = repository.split("/", 1)[0]
    details = {k: v for k, v in state.items() if k not in _OMITTED}
    return {
        "position": event.position,
        "recorded_at": _timestamp(state.get("timestamp")),
        "action": action_name(event.topic),
        "actor": state.get("actor") or "system",
        "client_address": state.get("client_address") or "local",
        "token": state.get("token"),
        "namespace": namespace,
        "repository": repository,
        "tag": tag,
        "digest": digest,
        "details": orjson.dumps(details).decode(),
    }


def iso_utc(value: Any) -> str:
    """A time as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, so lexical order is time order (the
    `since`/`until` filters compare text on both backends). Naive times are taken as UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _timestamp(value: Any) -> str:
    # The common case, what orjson wrote for an aware UTC datetime with microseconds, is
    # already in the normal form but for its offset (a fast path: catch-up runs this per event).
    if isinstance(value, str) and len(value) == 32 and value.endswith("+00:00"):
        return value[:-6] + "Z"
    return iso_utc(value) if value else ""


class AuditTrail:
    """The projection. `suffix` names a parallel table set (used by a rebuild)."""

    name = "audit"
    topics: tuple[str, ...] = ()  # every event

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self.table = TABLE + suffix
        self._insert = (f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES "
                        f"({', '.join(f'%({c})s' for c in COLUMNS)})")

    def with_suffix(self, suffix: str) -> AuditTrail:
        return AuditTrail(suffix)

    def tables(self) -> dict[str, str]:
        return {TABLE: self.table}

    def create_statements(self, dialect: Dialect) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} (position {dialect.bigint} PRIMARY KEY, "
            "recorded_at TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, client_address TEXT NOT NULL, "
            "token TEXT, namespace TEXT, repository TEXT, tag TEXT, digest TEXT, details TEXT NOT NULL)",
        ]

    def index_statements(self, dialect: Dialect) -> list[str]:
        return [f"CREATE INDEX IF NOT EXISTS {self.table}_{column} ON {self.table} ({column}, position)"
                for column in ("actor", "namespace", "repository", "action", "recorded_at")]

    def apply(self, dialect: Dialect, cursor: Any, events: Sequence[Recorded]) -> None:
        if not events:
            return
        if dialect.name == "postgres":
            # COPY: one stream for the batch (executemany costs a pipelined statement per row,
            # ~3x slower here).
            with cursor.copy(f"COPY {self.table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for event in events:
                    values = row(event)
                    copy.write_row([values[c] for c in COLUMNS])
        else:
            cursor.executemany(dialect.sql(self._insert), [row(e) for e in events])
