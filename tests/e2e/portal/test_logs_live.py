"""The access lines of a skopeo push, read back through `/api/v0/logs?component=api` and seen in
the portal's `Logs` tab, which follows them live (Chromium, Playwright)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.clients import Skopeo, make_image
from tests.e2e.portal.conftest import shoot, sign_in
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e


def test_a_skopeo_push_reads_back_in_the_api_and_the_logs_tab(portal_server: DockyardServer, context: object,
                                                               tmp_path: Path) -> None:
    skopeo = Skopeo(portal_server, tmp_path / "skopeo")
    image = make_image(tmp_path / "img", ["4K", "64K"], seed="logs-live", tag="v1")
    skopeo.copy(image.ref, skopeo.docker("admin/logs-live", "v1"))

    with portal_server.client() as admin:
        r = admin.get("/api/v0/logs", params={"component": "api"})
    assert r.status_code == 200, r.text
    lines = r.json()["lines"]
    put = [line for line in lines if "PUT /v2/admin/logs-live/manifests/v1 201" in line]
    assert len(put) == 1 and "user=admin" in put[0] and "client=127.0.0.1" in put[0], lines[-10:]
    assert any("/v2/admin/logs-live/blobs/uploads/" in line and "user=admin" in line for line in lines)
    # skopeo's first, credential-less probe is answered 401 and names no user; one line per request.
    assert any(" GET /v2/ 401 " in line and "user=-" in line for line in lines), lines[-10:]
    assert not any("HTTP/1.1" in line for line in lines)

    page = context.new_page()  # type: ignore[attr-defined]
    sign_in(page, portal_server, "admin", portal_server.admin_password)
    page.get_by_role("link", name="Logs", exact=True).click()
    page.get_by_label("Component").select_option("api")
    page.get_by_role("button", name="Show").click()
    box = page.get_by_role("log", name="Log lines")
    box.get_by_text("PUT /v2/admin/logs-live/manifests/v1 201", exact=False).wait_for()
    # Followed live: a second push appears without reloading the page.
    page.get_by_label("Follow live").check()
    skopeo.copy(image.ref, skopeo.docker("admin/logs-live", "v2"))
    box.get_by_text("PUT /v2/admin/logs-live/manifests/v2 201", exact=False).wait_for(timeout=30_000)
    shoot(page, "logs-live-api")
