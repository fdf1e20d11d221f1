"""A CSV or JSONL export of 100k audit rows streams in flat memory: the API's body generators
and the CLI's writer hold one page at a time, whatever the size of the result. (On SQLite only:
both backends page the same way, and tracing allocations over 100k rows costs seconds.)"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import dockyard.api.app  # noqa: F401 - first: the routers' modules import each other through it
from dockyard.api.v0.events import _csv_lines, _jsonl_lines
from dockyard.bootstrap import registry_on
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.projections.audit_queries import EVERYTHING, AuditFilter, AuditQueries
from dockyard.projections.audit_trail import COLUMNS, AuditTrail

ROWS = 100_000


def fill(registry: Registry) -> None:
    """100k audit rows written straight into the trail's table (the export reads only that)."""
    trail = AuditTrail()
    dialect = registry.dialect
    insert = dialect.sql(f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES "
                         f"({', '.join(f'%({c})s' for c in COLUMNS)})")
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        for statement in trail.create_statements(dialect):
            cursor.execute(statement)
        for start in range(1, ROWS + 1, 10_000):
            cursor.executemany(insert, [{
                "position": p, "recorded_at": f"2026-11-28T10:00:00.{p % 1_000_000:06d}Z", "action": "tag.moved",
                "actor": f"user{p % 97}", "client_address": "10.0.0.7", "token": None, "namespace": "team",
                "repository": f"team/app{p % 500}", "tag": f"v{p}", "digest": "sha256:" + "ab" * 32,
                "details": '{"previous":null,"padding":"' + "x" * 120 + '"}'} for p in range(start, start + 10_000)])


def drain(chunks: Iterator[bytes]) -> tuple[int, int, int]:
    """(bytes streamed, lines, peak traced memory while streaming)."""
    tracemalloc.start()
    total = lines = 0
    try:
        for chunk in chunks:
            total += len(chunk)
            lines += chunk.count(b"\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return total, lines, peak


def test_exports_of_100k_rows_stream_in_flat_memory(tmp_path) -> None:  # noqa: ANN001
    from dockyard.cli_read import _write_rows

    registry = registry_on(event_store_env(str(tmp_path / "data"), None))
    try:
        fill(registry)
        queries = AuditQueries(registry.recorder.datastore, registry.dialect)
        # Step 1: the API's CSV and JSONL bodies.
        for render, header in ((_csv_lines, 1), (_jsonl_lines, 0)):
            total, lines, peak = drain(render(queries.stream(AuditFilter(), EVERYTHING)))
            assert lines == ROWS + header
            # The whole body is tens of megabytes; what was held at once is a page or two.
            assert total > 25_000_000 and peak < 8_000_000, (total, peak)
        # Step 2: the CLI's writer (`dockyard audit export`).
        out = _Counter()
        tracemalloc.start()
        try:
            assert _write_rows(queries.stream(AuditFilter(), EVERYTHING), "csv", out) == ROWS
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert out.size > 25_000_000 and peak < 8_000_000, (out.size, peak)
    finally:
        registry.close()


class _Counter(io.TextIOBase):
    size = 0

    def write(self, text: str) -> int:
        self.size += len(text)
        return len(text)
