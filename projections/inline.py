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


def statements(dialect: Dialect, events: Iterable[Any]) -> list[tuple[str, Any]]:
    """The statements (SQL of `dialect`, parameters) that fold `events`, in log order, into the
    tables. A fold reads nothing, so they can be built before the transaction that runs them."""
    return [(dialect.sql(statement), params) for event in events
            for statement, params in _FOLDS.get(type(event), _no_fold)(event)]


def apply(dialect: Dialect, cursor: Any, events: Iterable[Any]) -> None:
    """Fold `events`, in log order, into the tables through `cursor` (inside the caller's transaction)."""
    for statement, params in statements(dialect, events):
        cursor.execute(statement, params)


def _no_fold(event: Any) -> list[tuple[str, Any]]:
    return []
