"""`dockyard users` keeps the same rules as the management API (issue 7, items 9 and 10): the last
active admin stays (today's `set-role admin --role none` and `deactivate admin` left none), the
password policy holds, and each refusal is one line on stderr with exit status 1. The CLI runs
in this process on a data directory made beforehand, as `dockyard serve` would have made it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.bootstrap import registry_on, views
from dockyard.cli import main
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    data = tmp_path / "data"
    data.mkdir()
    registry = registry_on(event_store_env(str(data), None))
    try:
        Identity(registry, *views(registry)).create_user("admin", "hash", "admin")
    finally:
        registry.close()
    return str(data)


def users(capsys: pytest.CaptureFixture[str], data_dir: str, *args: str) -> tuple[int, str, str]:
    """Exit status, stdout, and the `error:` lines of stderr (which also says what it works on)."""
    status = main(["users", *args, "--data-dir", data_dir])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, "\n".join(line for line in err.splitlines() if line.startswith("error:"))


def roles(capsys: pytest.CaptureFixture[str], data_dir: str) -> dict[str, tuple[str, str]]:
    status, out, _ = users(capsys, data_dir, "list")
    assert status == 0
    return {name: (role, state) for name, role, _source, state in (line.split("\t") for line in out.splitlines())}


def test_the_last_active_admin_stays(capsys: pytest.CaptureFixture[str], data_dir: str) -> None:
    for verb in (("set-role", "admin", "--role", "none"), ("deactivate", "admin")):
        status, _, err = users(capsys, data_dir, *verb)
        assert status == 1
        assert err.startswith("error: the last active global admin cannot be demoted or deactivated")
        assert len(err.splitlines()) == 1
    assert roles(capsys, data_dir)["admin"] == ("admin", "active")


def test_the_password_policy(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                             data_dir: str) -> None:
    monkeypatch.setenv("DOCKYARD_USER_PASSWORD", "seven77")
    status, _, err = users(capsys, data_dir, "create", "gordon")
    assert status == 1 and err.startswith("error: the password must be at least 8 characters long")
    assert len(err.splitlines()) == 1 and "seven77" not in err
    assert "gordon" not in roles(capsys, data_dir)

    monkeypatch.setenv("DOCKYARD_PASSWORD_MIN_LENGTH", "6")  # the policy is a setting
    assert users(capsys, data_dir, "create", "gordon")[0] == 0
    monkeypatch.setenv("DOCKYARD_USER_PASSWORD", "short")
    assert users(capsys, data_dir, "set-password", "gordon")[0] == 1
