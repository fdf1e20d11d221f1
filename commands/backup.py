"""`dockyard backup` and `dockyard restore`: an online, consistent copy of the metadata (the event
log, read models and secrets) and the list of blobs it references.

    backup DIR:   metadata.sqlite (SQLite's online backup API: a consistent snapshot while serve
                  runs) or metadata.pgdump (`pg_dump -Fc`, one consistent transaction), blobs.txt
                  (every digest the registry view links or holds a manifest under, sorted) and
                  backup.json (what it is, when, how many blobs).
    restore DIR:  into a data directory without a dockyard.db, or an empty PostgreSQL database.

Blobs themselves are not copied: they are content-addressed and immutable, so the object store's
own replication or a file copy is the way; blobs.txt says which are needed, and `restore` says
which of them the target store lacks (images using them will not pull until they are put back).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.commands import store_location

_REFERENCED = "SELECT DISTINCT digest FROM blob_links"  # manifests' bytes live in the log, not the store


class BackupError(Exception):
    """A backup or restore that cannot be done, with the reason (printed as one line)."""


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found (apt install postgresql-client)")
    return path


def backup(data_dir: str, database_url: str | None, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise BackupError(f"{out} is not empty")
    if database_url:
        subprocess.run([_pg_tool("pg_dump"), "-Fc", "-f", str(out / "metadata.pgdump"), database_url],
                       check=True, capture_output=True)
        import psycopg

        with psycopg.connect(database_url) as conn:
            digests = sorted(row[0] for row in conn.execute(_REFERENCED))
        kind = "postgresql"
    else:
        source = sqlite3.connect(store_location.sqlite_path(data_dir))
        target = sqlite3.connect(out / "metadata.sqlite")
        try:
            source.backup(target)  # online: pages copied consistently while others write
        finally:
            source.close()
        digests = sorted(row[0] for row in target.execute(_REFERENCED))
        target.close()
        kind = "sqlite"
    (out / "blobs.txt").write_text("".join(f"{d}\n" for d in digests))
    report = {"kind": kind, "createdAt": datetime.now(UTC).isoformat(), "blobs": len(digests)}
    (out / "backup.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def restore(source: Path, data_dir: str, database_url: str | None, present: Any = None) -> dict[str, Any]:
    """Restore the backup in `source`; `present(digest) -> bool` tells which blobs the target
    store has (to report the missing ones)."""
    meta = json.loads((source / "backup.json").read_text())
    if meta["kind"] == "postgresql":
        if not database_url:
            raise BackupError("a PostgreSQL backup restores into --database-url (an empty database)")
        if store_location.missing_event_log(data_dir, database_url) is None:
            raise BackupError("the target database already holds a Dockyard event log: restore into an empty one")
        subprocess.run([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "-d", database_url,
                        str(source / "metadata.pgdump")], check=True, capture_output=True)
        # A dump carries no planner statistics: the restored tables are planned from guesses until
        # autovacuum gets to them (never where it is off). pg_restore's manual says to ANALYZE.
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
    else:
        if database_url:
            raise BackupError("an SQLite backup restores into --data-dir")
        target = store_location.sqlite_path(data_dir)
        if os.path.exists(target):
            raise BackupError(f"{target} exists: restore into a new data directory")
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        src = sqlite3.connect(source / "metadata.sqlite")
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    digests = (source / "blobs.txt").read_text().split()
    missing = [d for d in digests if present is not None and not present(d)]
    return {"kind": meta["kind"], "blobs": len(digests), "missingBlobs": missing}
