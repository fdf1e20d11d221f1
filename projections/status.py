"""`projections status`: for each read model, its position, the log's head, the lag in events
and seconds, its rows and its state — the followed ones (from `projection_positions`) and the
inline ones (written in the event transaction: always at the head). A failed projection also
says when its runner tries again (`retry_at`, UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from dockyard.projections import identity_view, registry_view

INLINE = {"registry": registry_view.TABLES, "identity": identity_view.TABLES}


def _count(read_side: Any, tables: Any) -> int:
    total = 0
    with read_side.registry.dialect.reading(read_side.registry.recorder.datastore) as cursor:
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) AS n FROM {table}")
            total += int(cursor.fetchall()[0]["n"])
    return total


def _lag_seconds(read_side: Any, position: int, head: int) -> float:
    """How long ago the oldest event not yet folded was recorded (0 when caught up)."""
    if position >= head:
        return 0.0
    [first] = read_side.registry.recorder.select_notifications(position, 1, inclusive_of_start=False)
    recorded = datetime.fromisoformat(orjson.loads(first.state)["timestamp"])
    return max(0.0, (datetime.now(UTC) - recorded).total_seconds())


def projection_status(read_side: Any) -> list[dict[str, Any]]:
    head = read_side.head()
    out: list[dict[str, Any]] = []
    for name, tables in INLINE.items():
        out.append({"name": name, "kind": "inline", "position": head, "head": head, "lag_events": 0,
                    "lag_seconds": 0.0, "rows": _count(read_side, tables), "state": "inline", "error": None,
                    "retry_at": None})
    for name, runner in read_side.runners.items():
        row = read_side.positions.get(name) or {"position": 0, "failed_position": None, "error": None,
                                                "retry_at": None}
        position = int(row["position"])
        if row["error"]:
            state = f"failed at {row['failed_position']}"
        else:
            state = "caught up" if position >= head else "behind"
        out.append({"name": name, "kind": "followed", "position": position, "head": head,
                    "lag_events": max(0, head - position), "lag_seconds": _lag_seconds(read_side, position, head),
                    "rows": _count(read_side, runner.projection.tables().values()), "state": state,
                    "error": row["error"], "retry_at": row["retry_at"] if row["error"] else None})
    return out
