"""The tamper-evident log on SQLite and PostgreSQL: every append is chained in its own
transaction, checkpoints are signed, and `dockyard audit verify` (no server, no private key)
names the first position edited, deleted, reordered or inserted by SQL behind the registry's
back; an intact export verifies offline with the public key alone; events stored before the
chain existed are chained on first start, and that is recorded as an event."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from dockyard.cli import main as dockyard
from dockyard.commands.audit_chain import start_chain
from dockyard.commands.registry import Registry
from dockyard.commands.secrets import SecretStore
from dockyard.projections.read_side import ReadSide
from tests.integration.test_projection_runner import append, positions
from tests.integration.test_rebuild import place, registry  # noqa: F401 - the same fixtures


def where(place: tuple[Path, str | None]) -> list[str]:
    data_dir, database_url = place
    return ["--database-url", database_url] if database_url else ["--data-dir", str(data_dir)]


def signed_log(registry: Registry, tmp_path: Path) -> Path:  # noqa: F811
    """300 events, checkpoints every 50, and the public key in a file (as an auditor keeps it)."""
    append(registry, 300)
    key = SecretStore(registry).audit_signing_key()
    signer = ReadSide(registry, key, checkpoint_every=50).runners["checkpoints"]
    signer.batch = 50
    signer.catch_up()
    pem = tmp_path / "audit.pub"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return pem


def events_table(registry: Registry) -> tuple[str, str]:  # noqa: F811
    if registry.dialect.name == "postgres":
        return f"{registry.recorder.datastore.schema}.{registry.recorder.events_table_name}", "notification_id"
    return registry.recorder.events_table_name, "rowid"


def tamper(registry: Registry, *statements: str) -> None:  # noqa: F811
    table, column = events_table(registry)
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        for statement in statements:
            cursor.execute(statement.format(table=table, pos=column))


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = dockyard(["audit", "verify", *args])
    return code, capsys.readouterr().out


def test_intact_log_and_export_verify(registry: Registry, place, tmp_path: Path,  # noqa: F811, ANN001
                                      capsys: pytest.CaptureFixture[str]) -> None:
    pem = signed_log(registry, tmp_path)
    code, out = verify(capsys, *where(place), "--public-key", str(pem))
    assert code == 0 and "intact: 300 events" in out and "6 signed checkpoint(s)" in out
    # The export verifies offline, with the public key alone.
    export = tmp_path / "log.jsonl"
    assert dockyard(["audit", "export", "--format", "chain", "-o", str(export), *where(place)]) == 0
    capsys.readouterr()
    code, out = verify(capsys, "--from-export", str(export), "--public-key", str(pem))
    assert code == 0 and "intact: 300 events" in out
    # An edited export line is found; a checkpoint signed by another key is refused.
    lines = export.read_text().splitlines()
    lines[10] = lines[10].replace('"originator_version":1', '"originator_version":2')
    (tmp_path / "edited.jsonl").write_text("\n".join(lines) + "\n")
    code, out = verify(capsys, "--from-export", str(tmp_path / "edited.jsonl"), "--public-key", str(pem))
    assert code == 1 and "edited at position 11" in out
    from cryptography.hazmat.primitives.asymmetric import ed25519

    other = tmp_path / "other.pub"
    other.write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    code, out = verify(capsys, "--from-export", str(export), "--public-key", str(other))
    assert code == 1 and "checkpoint at position 50: signature does not verify" in out


@pytest.mark.parametrize("kind", ["edited", "deleted", "reordered", "inserted"])
def test_tampering_by_sql_is_found_at_its_position(kind: str, registry: Registry, place,  # noqa: F811, ANN001
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pem = signed_log(registry, tmp_path)
    log = positions(registry)
    target = log[120]
    if kind == "edited":  # one event's stored state changed (same length, other bytes)
        replaced = ("CAST(REPLACE(state, CAST('ns/r' AS BLOB), CAST('ns/x' AS BLOB)) AS BLOB)"
                    if registry.dialect.name == "sqlite" else "convert_to(replace(convert_from(state, 'UTF8'), 'ns/r', 'ns/x'), 'UTF8')")
        tamper(registry, f"UPDATE {{table}} SET state = {replaced} WHERE {{pos}} = {target}")
    elif kind == "deleted":
        tamper(registry, f"DELETE FROM {{table}} WHERE {{pos}} = {target}")
    elif kind == "reordered":  # two events swap places
        tamper(registry, f"UPDATE {{table}} SET {{pos}} = -1 WHERE {{pos}} = {target}",
               f"UPDATE {{table}} SET {{pos}} = {target} WHERE {{pos}} = {target + 1}",
               f"UPDATE {{table}} SET {{pos}} = {target + 1} WHERE {{pos}} = -1")
    else:  # a forged event appended behind the registry's back (a copy of one, as a new version)
        target = log[-1] + 1
        column = events_table(registry)[1]
        tamper(registry, f"INSERT INTO {{table}} ({column}, originator_id, originator_version, topic, state) "
               f"SELECT {target}, originator_id, originator_version + 1, topic, state FROM {{table}} "
               f"WHERE {{pos}} = {log[5]}")
    code, out = verify(capsys, *where(place), "--public-key", str(pem))
    assert code == 1
    assert f"{kind} at position {target}" in out


def test_events_before_the_chain_are_chained_on_first_start(registry: Registry, place,  # noqa: F811, ANN001
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    append(registry, 120)
    with registry.recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute("DELETE FROM event_chain")  # as a log written before this feature
    assert start_chain(registry) == 120
    assert start_chain(registry) == 0  # once
    last = registry.recorder.select_notifications(positions(registry)[-1], 1)[0]
    assert last.topic == "dockyard.AuditChain.Created" and b'"backfilled":120' in last.state
    code, out = verify(capsys, *where(place))
    assert code == 0 and "intact: 121 events" in out
