"""The read models written in the event transaction: what pulls and access checks read.

`apply` is called by the recorders (`dockyard.commands.persistence`) with the events being
appended, and by `projections.rebuild` with the whole log; both fold through the same
functions, which is why a rebuild gives the rows the live system wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dockyard.projections import identity_view, registry_view
from dockyard.projections.dialect import Dialect

_VIEWS = (registry_view, identity_view)
TABLES: tuple[str, ...] = tuple(t for view in _VIEWS for t in view.TABLES)
_FOLDS = {cls: fold for view in _VIEWS for cls, fold in view.FOLDS.items()}


def create_statements(dialect: Dialect) -> list[str]:
    return [s for view in _VIEWS for s in view.create_statements(dialect)]


def apply(dialect: Dialect, cursor: Any, events: Iterable[Any]) -> None:
    """Fold `events`, in log order, into the tables through `cursor` (inside the caller's transaction)."""
    for event in events:
        fold = _FOLDS.get(type(event))
        if fold is not None:
            for statement, params in fold(event):
                cursor.execute(dialect.sql(statement), params)
