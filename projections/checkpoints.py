"""Signed checkpoints of the event chain (`projections.chain`), as a followed projection: the
runner gives it leadership across replicas, a position and exactly-once batches.

At the end of a batch, when `every_events` events or `every_seconds` of event time have passed
since the last checkpoint (or there is none yet), it signs (position, chain hash, the event's
time) of the batch's last event with the Ed25519 key from the secret store. It reads only the
events and the chain rows written with them, and Ed25519 signatures are deterministic, so a
rebuild with the same key gives the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from dockyard.projections import chain
from dockyard.projections.audit_trail import iso_utc
from dockyard.projections.dialect import Dialect
from dockyard.projections.runner import Recorded


class Checkpoints:
    name = "checkpoints"
    topics: tuple[str, ...] = ()

    def __init__(self, key: ed25519.Ed25519PrivateKey, every_events: int = 1000, every_seconds: float = 60.0,
                 suffix: str = "") -> None:
        self.key, self.every_events, self.every_seconds, self.suffix = key, every_events, every_seconds, suffix
        self.table = chain.CHECKPOINT_TABLE + suffix

    def with_suffix(self, suffix: str) -> Checkpoints:
        return Checkpoints(self.key, self.every_events, self.every_seconds, suffix)

    def tables(self) -> dict[str, str]:
        return {chain.CHECKPOINT_TABLE: self.table}

    def create_statements(self, dialect: Dialect) -> list[str]:
        return [s.replace(chain.CHECKPOINT_TABLE, self.table) for s in chain.create_statements(dialect)
                if chain.CHECKPOINT_TABLE in s]

    def index_statements(self, dialect: Dialect) -> list[str]:
        return []

    def apply(self, dialect: Dialect, cursor: Any, events: Sequence[Recorded]) -> None:
        if not events:
            return
        last = events[-1]
        cursor.execute(f"SELECT position, signed_at FROM {self.table} ORDER BY position DESC LIMIT 1")
        rows = cursor.fetchall()
        at = iso_utc(last.state["timestamp"])
        if rows:
            elapsed = (datetime.fromisoformat(at) - datetime.fromisoformat(rows[0]["signed_at"])).total_seconds()
            if last.position - int(rows[0]["position"]) < self.every_events and elapsed < self.every_seconds:
                return
        cursor.execute(dialect.sql(f"SELECT chain_hash FROM {chain.CHAIN_TABLE} WHERE position = %(p)s"),
                       {"p": last.position})
        found = cursor.fetchall()
        if not found:
            raise LookupError(f"event {last.position} has no chain row")
        chain_hash = bytes(found[0]["chain_hash"])
        signature = self.key.sign(chain.checkpoint_message(last.position, chain_hash, at))
        cursor.execute(dialect.sql(f"INSERT INTO {self.table} (position, chain_hash, signed_at, signature) "
                                   "VALUES (%(p)s, %(h)s, %(at)s, %(sig)s)"),
                       {"p": last.position, "h": chain_hash, "at": at, "sig": signature})
