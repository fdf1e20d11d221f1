"""The tamper-evident log: a hash chain over every stored event, written in the event's own
transaction, and Ed25519-signed checkpoints of it.

    event_hash(e)  = sha256(topic, originator id, version, stored state bytes)   (length-prefixed)
    chain_hash(p)  = sha256(chain_hash(previous position), position, event_hash)

`event_chain(position, event_hash, chain_hash)` is written by the recorders
(`commands.persistence`) after the insert, under SQLite's single writer or PostgreSQL's events
table lock, so positions are chained in log order. Events stored before the chain existed are
chained by the first append that finds them unchained (the first start records one).

`audit_checkpoints(position, chain_hash, signed_at, signature)` rows sign
`checkpoint_message(position, chain_hash, signed_at)` with a key the log never holds.
`verify` needs neither a server nor the private key: it recomputes the chain from the events
and names the first position edited, deleted, inserted or reordered.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from dockyard.projections.dialect import Dialect

GENESIS = bytes(32)
CHAIN_TABLE = "event_chain"
CHECKPOINT_TABLE = "audit_checkpoints"


def create_statements(d: Dialect) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (position {d.bigint} PRIMARY KEY, event_hash {d.blob} NOT NULL, "
        f"chain_hash {d.blob} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (position {d.bigint} PRIMARY KEY, chain_hash {d.blob} "
        f"NOT NULL, signed_at TEXT NOT NULL, signature {d.blob} NOT NULL)",
    ]


def _field(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


def event_hash(topic: str, originator_id: UUID | str, version: int, state: bytes) -> bytes:
    return hashlib.sha256(_field(topic.encode()) + _field(str(UUID(str(originator_id))).encode())
                          + struct.pack(">q", version) + _field(bytes(state))).digest()


def chain_hash(previous: bytes, position: int, event_digest: bytes) -> bytes:
    return hashlib.sha256(previous + struct.pack(">q", position) + event_digest).digest()


def checkpoint_message(position: int, chain: bytes, signed_at: str) -> bytes:
    return b"dockyard-audit-checkpoint\x00" + struct.pack(">q", position) + chain + signed_at.encode()


@dataclass(frozen=True, slots=True)
class StoredRow:
    position: int
    topic: str
    originator_id: Any
    version: int
    state: bytes


# -- writing (inside the event transaction) --------------------------------------------------

def _events_select(dialect: Dialect, events_table: str) -> str:
    column = "notification_id" if dialect.name == "postgres" else "rowid"
    return (f"SELECT {column} AS position, originator_id, originator_version, topic, state FROM {events_table} "
            f"WHERE {column} > %(after)s AND {column} < %(before)s ORDER BY {column}")


def ask_head(dialect: Dialect, cursor: Any) -> None:
    """Ask for the chain's last row through `cursor` (its rows are `append`'s `head_rows`). A recorder
    that pipelines sends it in one flush with its insert, after the lock."""
    cursor.execute(f"SELECT position, chain_hash FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")


def append(dialect: Dialect, cursor: Any, events_table: str, new: Sequence[StoredRow],
           head_rows: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Chain `new` (just inserted, in position order) through `cursor`, in the caller's
    transaction; any earlier event not yet chained (stored before the chain existed) first.
    `head_rows`: what `ask_head` answered in this transaction after the insert (asked here if None).
    Returns the chain's new head, as `head_rows` for a next append in the same transaction."""
    if not new:
        return list(head_rows or [])
    if head_rows is None:
        ask_head(dialect, cursor)
        head_rows = cursor.fetchall()
    rows = head_rows
    last, previous = (int(rows[0]["position"]), bytes(rows[0]["chain_hash"])) if rows else (0, GENESIS)
    pending: list[StoredRow] = []
    if new[0].position > last + 1:  # a gap: rolled-back ids (PostgreSQL) or unchained history
        cursor.execute(dialect.sql(_events_select(dialect, events_table)),
                       {"after": last, "before": new[0].position})
        pending = [StoredRow(int(r["position"]), r["topic"], r["originator_id"], r["originator_version"],
                             bytes(r["state"])) for r in cursor.fetchall()]
    out = []
    for row in [*pending, *new]:
        digest = event_hash(row.topic, row.originator_id, row.version, row.state)
        previous = chain_hash(previous, row.position, digest)
        out.append({"position": row.position, "event_hash": digest, "chain_hash": previous})
    cursor.executemany(dialect.sql(f"INSERT INTO {CHAIN_TABLE} (position, event_hash, chain_hash) "
                                   "VALUES (%(position)s, %(event_hash)s, %(chain_hash)s)"), out)
    return [{"position": out[-1]["position"], "chain_hash": out[-1]["chain_hash"]}]


# -- verifying ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    kind: str  # edited | deleted | inserted | reordered | checkpoint
    position: int
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} at position {self.position}{': ' + self.detail if self.detail else ''}"


@dataclass
class Verdict:
    events: int = 0
    checkpoints: int = 0
    last_checkpoint: int = 0
    head_hash: bytes = GENESIS
    finding: Finding | None = None

    @property
    def intact(self) -> bool:
        return self.finding is None


def verify(events: Iterable[StoredRow], chain: Iterable[tuple[int, bytes, bytes]],
           checkpoints: Iterable[tuple[int, bytes, str, bytes]], public_key: Any) -> Verdict:
    """Recompute the chain over `events` (in position order) and compare it with the stored
    `chain` rows (position, event_hash, chain_hash) and the signed `checkpoints` (position,
    chain_hash, signed_at, signature); `public_key` an Ed25519 public key (None: skip signatures).

    The first discrepancy in position order is the finding: an event whose content differs
    from what was chained is `edited`, or `reordered` when its content is the one chained at
    another position; a chained position with no event is `deleted`; an event with no chain row
    is `inserted`; a checkpoint whose signature fails or whose hash differs from the recomputed
    chain is a `checkpoint` finding (its position: the chain rows were rewritten before it).
    """
    from cryptography.exceptions import InvalidSignature

    verdict = Verdict()
    chain_rows = sorted((int(p), bytes(e), bytes(c)) for p, e, c in chain)
    by_event_hash = {e: p for p, e, _c in chain_rows}
    signed = {int(p): (bytes(h), at, bytes(sig)) for p, h, at, sig in checkpoints}
    if public_key is not None:
        for position, (h, at, sig) in sorted(signed.items()):
            try:
                public_key.verify(sig, checkpoint_message(position, h, at))
            except InvalidSignature:
                return _found(verdict, "checkpoint", position, "signature does not verify")
    previous, ci = GENESIS, 0
    for row in events:  # a merge of two position-ordered streams
        if ci < len(chain_rows) and chain_rows[ci][0] < row.position:
            return _found(verdict, "deleted", chain_rows[ci][0])
        if ci >= len(chain_rows) or chain_rows[ci][0] > row.position:
            return _found(verdict, "inserted", row.position)
        _position, stored_event, stored_chain = chain_rows[ci]
        ci += 1
        digest = event_hash(row.topic, row.originator_id, row.version, row.state)
        if digest != stored_event:
            other = by_event_hash.get(digest)
            if other is not None and other != row.position:
                return _found(verdict, "reordered", row.position, f"holds the event chained at {other}")
            return _found(verdict, "edited", row.position)
        previous = chain_hash(previous, row.position, digest)
        if previous != stored_chain:
            return _found(verdict, "edited", row.position, "the chain rows were rewritten")
        if row.position in signed:
            if signed[row.position][0] != previous:
                return _found(verdict, "checkpoint", row.position, "signed hash differs from the chain")
            verdict.checkpoints += 1
            verdict.last_checkpoint = row.position
        verdict.events += 1
    if ci < len(chain_rows):
        return _found(verdict, "deleted", chain_rows[ci][0])
    unmatched = [p for p in signed if p > verdict.last_checkpoint]
    if unmatched:
        return _found(verdict, "deleted", min(unmatched), "a signed checkpoint names a missing event")
    verdict.head_hash = previous
    return verdict


def _found(verdict: Verdict, kind: str, position: int, detail: str = "") -> Verdict:
    verdict.finding = Finding(kind, position, detail)
    return verdict


def read_events(dialect: Dialect, datastore: Any, events_table: str, page: int = 5000) -> Iterator[StoredRow]:
    """Every stored event in position order, one page in memory at a time."""
    column = "notification_id" if dialect.name == "postgres" else "rowid"
    after = 0
    while True:
        with dialect.reading(datastore) as cursor:
            cursor.execute(dialect.sql(
                f"SELECT {column} AS position, originator_id, originator_version, topic, state FROM {events_table} "
                f"WHERE {column} > %(after)s ORDER BY {column} LIMIT %(limit)s"), {"after": after, "limit": page})
            rows = cursor.fetchall()
        for r in rows:
            yield StoredRow(int(r["position"]), r["topic"], r["originator_id"], r["originator_version"],
                            bytes(r["state"]))
        if len(rows) < page:
            return
        after = int(rows[-1]["position"])


def read_chain(dialect: Dialect, datastore: Any) -> list[tuple[int, bytes, bytes]]:
    with dialect.reading(datastore) as cursor:
        cursor.execute(f"SELECT position, event_hash, chain_hash FROM {CHAIN_TABLE} ORDER BY position")
        return [(int(r["position"]), bytes(r["event_hash"]), bytes(r["chain_hash"])) for r in cursor.fetchall()]


def read_checkpoints(dialect: Dialect, datastore: Any) -> list[tuple[int, bytes, str, bytes]]:
    with dialect.reading(datastore) as cursor:
        cursor.execute(f"SELECT position, chain_hash, signed_at, signature FROM {CHECKPOINT_TABLE} ORDER BY position")
        return [(int(r["position"]), bytes(r["chain_hash"]), r["signed_at"], bytes(r["signature"]))
                for r in cursor.fetchall()]
