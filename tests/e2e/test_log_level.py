"""`--log-level` (DOCKYARD_LOG_LEVEL) sets what the server prints, whatever the portal's Logs view
collects: the view raises Dockyard's loggers to INFO to keep its lines, and those lines (an access
line per request among them) reached the terminal of a server told `warning`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e


def _printed_after_requests(tmp_path: Path, level: str) -> str:
    server = DockyardServer(tmp_path / level, None, ADMIN_PASSWORD, workers=2,
                            extra_env={"DOCKYARD_LOG_LEVEL": level})
    server.start()
    try:
        for _ in range(4):  # both workers answer some of them
            assert httpx.get(f"{server.url}/v2/no/such/manifests/latest").status_code == 401
        logs = httpx.get(f"{server.url}/api/v0/logs", auth=("admin", ADMIN_PASSWORD))
        assert logs.status_code == 200
    finally:
        server.stop()
    return server.log()


def test_a_server_told_warning_prints_no_info_line(tmp_path: Path) -> None:
    # Step 1: at the default level the requests are printed, one access line each.
    assert "/v2/no/such/manifests/latest" in _printed_after_requests(tmp_path, "info")
    # Step 2: told `warning`, it prints none of them (nor any other INFO line of its own).
    quiet = _printed_after_requests(tmp_path, "warning")
    assert "/v2/no/such/manifests/latest" not in quiet, quiet
    assert " INFO " not in quiet, quiet
