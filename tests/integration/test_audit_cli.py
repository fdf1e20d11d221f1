"""`dockyard audit query|export` and `dockyard projections status` on a data directory or
database with no server running; CLI verbs record the operating-system user (rule 6)."""

from __future__ import annotations

import csv
import getpass
import io
import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests.integration.test_rebuild import place, registry  # noqa: F401 - the same fixtures

ROOT = Path(__file__).resolve().parents[2]


def dockyard(place: tuple[Path, str | None], *args: str) -> str:
    data_dir, database_url = place
    where = ["--database-url", database_url] if database_url else ["--data-dir", str(data_dir)]
    result = subprocess.run([sys.executable, "-m", "dockyard", *args, *where], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "DOCKYARD_USER_PASSWORD": "pw-123456"}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_query_export_and_status(place: tuple[Path, str | None], registry) -> None:  # noqa: ANN001, F811
    # Step 1: two CLI verbs record events, as the OS user from this machine.
    dockyard(place, "users", "create", "gordon", "--role", "read-write")  # not admin: the only one stays
    dockyard(place, "users", "set-role", "gordon", "--role", "read-only")
    me = getpass.getuser()
    # Step 2: query them back, as text and as JSON lines.
    text = dockyard(place, "audit", "query", "--namespace", "gordon")
    lines = [line.split("\t") for line in text.splitlines()]
    assert [(f[2], f[3], f[4]) for f in lines] == [(me, "local", "user.created"), (me, "local", "user.role_changed")]
    jsonl = dockyard(place, "audit", "query", "--action", "user.role_changed", "--format", "jsonl")
    [changed] = [orjson.loads(line) for line in jsonl.splitlines()]
    assert changed["details"]["role"] == "read-only" and changed["actor"] == me
    # Step 3: export everything as CSV: one row per event of the log, in order.
    rows = list(csv.DictReader(io.StringIO(dockyard(place, "audit", "export", "--format", "csv"))))
    log = [n.id for n in registry.recorder.select_notifications(0, 10_000, inclusive_of_start=False)]
    assert [int(r["position"]) for r in rows] == log
    assert "password_hash" not in rows[0]["details"] and "pw-123456" not in "".join(r["details"] for r in rows)
    # Step 4: status shows the audit trail at the head, and the inline read models.
    status = {r["name"]: r for r in orjson.loads(dockyard(place, "projections", "status", "--format", "json"))}
    assert status["audit"]["position"] == status["audit"]["head"] == log[-1]
    assert status["audit"]["rows"] == len(log) and status["audit"]["state"] == "caught up"
    assert status["registry"]["kind"] == "inline" and status["identity"]["rows"] >= 1
    # Step 5: rebuilding every projection leaves the same audit rows.
    before = dockyard(place, "audit", "export", "--format", "csv")
    out = dockyard(place, "projections", "rebuild", "--all")
    assert "registry and identity views rebuilt" in out and f"audit rebuilt from {len(log)} events" in out
    assert dockyard(place, "audit", "export", "--format", "csv") == before
    # Not a terminal: the progress is plain lines (each fold's last one at the head), no bar drawn.
    assert f"audit: {log[-1]}/{log[-1]} events (100%)" in out and "events/s" in out
    assert "\x1b[" not in out and "\r" not in out


def test_retry_from_the_command_line(place: tuple[Path, str | None], registry) -> None:  # noqa: ANN001, F811
    """`projections retry NAME` with no server following: the CLI takes the lead and folds."""
    from dockyard.projections.runner import Positions

    dockyard(place, "users", "create", "gordon", "--role", "read-write")
    data_dir, database_url = place
    where = ["--database-url", database_url] if database_url else ["--data-dir", str(data_dir)]
    refused = subprocess.run([sys.executable, "-m", "dockyard", "projections", "retry", "audit", *where], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "has not failed" in refused.stderr
    # What a failure leaves (the position before the failing batch, its error), as the runner records it.
    positions = Positions(registry.recorder.datastore, registry.dialect)
    head = registry.recorder.max_notification_id()
    positions.record_failure("audit", positions.position("audit") + 1, "OSError: injected")
    out = dockyard(place, "projections", "retry", "audit")
    assert out.startswith("audit resumed") and positions.get("audit")["error"] is None
    assert positions.position("audit") == head
