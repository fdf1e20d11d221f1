"""Start-up settings: defaults a user who follows the README gets."""

from __future__ import annotations

import os

import pytest

from dockyard.api.settings import Settings


def test_serve_defaults_to_one_worker_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_WORKERS", raising=False)
    assert Settings().workers == (os.cpu_count() or 1)


def test_workers_from_the_environment_or_the_command_line_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_WORKERS", "3")
    assert Settings().workers == 3
    assert Settings(workers=1).workers == 1
