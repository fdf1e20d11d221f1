"""Start-up settings: defaults a user who follows the README gets."""

from __future__ import annotations

import os

import pytest

from dockyard.api.settings import Settings


@pytest.fixture(autouse=True)
def no_worker_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_WORKERS", raising=False)
    monkeypatch.delenv("DOCKYARD_DATABASE_URL", raising=False)


def test_serve_defaults_to_one_worker_per_core_on_either_backend() -> None:
    assert Settings(database_url="postgresql://u@db/x").workers == (os.cpu_count() or 1)
    assert Settings().workers == (os.cpu_count() or 1)


def test_workers_from_the_environment_or_the_command_line_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_WORKERS", "3")
    assert Settings().workers == 3
    assert Settings(workers=2, database_url="postgresql://u@db/x").workers == 2
    with pytest.raises(ValueError):
        Settings(workers=-1)
