"""A blob whose bytes go (garbage collection sweeping it) between the link check and the read is
answered 404 BLOB_UNKNOWN, never a 500 or a broken stream (memory store: the streamed path)."""

from __future__ import annotations

import httpx
import pytest

from dockyard.storage import blob_key
from tests.inprocess.conftest import Dockyard

pytestmark = pytest.mark.anyio


async def test_a_blob_gone_from_storage_is_unknown(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    await dockyard.push(client, "admin/swept", "v1")
    manifest = (await client.get("/v2/admin/swept/manifests/v1",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})).json()
    layer = manifest["layers"][0]["digest"]
    dockyard.services.store.delete(blob_key(layer))  # what the sweep does first
    answer = await client.get(f"/v2/admin/swept/blobs/{layer}")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
