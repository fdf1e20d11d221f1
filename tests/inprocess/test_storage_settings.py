"""Settings > Storage through `/api/v0/settings/storage`: a new store is probed before it is
recorded, the registry switches to it at once, its credentials are never shown or logged, and a
refused setting leaves the old store serving."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.storage import blob_key
from tests.inprocess.conftest import Dockyard
from tests.object_stores import MotoS3
from tests.server import free_port

pytestmark = pytest.mark.anyio
PATH = "/api/v0/settings/storage"


def changes(dockyard: Dockyard) -> list[dict[str, Any]]:
    return [e for e in dockyard.events(200) if e["topic"] == "dockyard.StorageSettings.Changed"]


async def test_an_admin_moves_the_registry_to_another_store(dockyard: Dockyard, client: httpx.AsyncClient,
                                                            tmp_path: Path) -> None:
    # At first the store is the one the registry was started with.
    assert (await client.get(PATH)).json() == {"url": "memory://", "source": "startup", "credentials": []}

    # A directory is chosen: probed, recorded as an event by admin, in force at once.
    url = f"file://{tmp_path}/blobs"
    answer = await client.put(PATH, json={"url": url})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"url": url, "source": "setting", "credentials": []}
    assert changes(dockyard)[-1]["url"] == url and changes(dockyard)[-1]["actor"] == "admin"
    assert list((tmp_path / "blobs").rglob("*")) == [tmp_path / "blobs" / "_probe"]  # the probe cleaned up

    # What is pushed now lands there.
    await dockyard.push(client, "admin/moved", "v1")
    assert list((tmp_path / "blobs" / "blobs" / "sha256").rglob("*"))


async def test_credentials_are_kept_secret(dockyard: Dockyard, client: httpx.AsyncClient, moto_s3: MotoS3,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bucket = moto_s3.new_bucket()
    secret = "s3cr3t-" + bucket
    answer = await client.put(PATH, json={"url": moto_s3.url(bucket, "reg"), "credentials": {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": secret}})
    assert answer.status_code == 200, answer.text

    # Names are shown, values never: not in the answers, not in the log.
    assert answer.json()["credentials"] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert secret not in answer.text and secret not in (await client.get(PATH)).text
    assert secret not in json.dumps(dockyard.events(200))
    assert changes(dockyard)[-1]["credentials_ref"].startswith("storage-credentials:")
    # Nor in what the process logs (the SDKs' debug lines included), nor in a refusal's answer.
    refused = await client.put(PATH, json={"url": moto_s3.url("no-such-bucket"), "credentials": {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": secret}})
    assert refused.status_code == 400 and secret not in refused.text
    assert caplog.records and secret not in caplog.text

    # Blobs now go to the bucket.
    digest = await dockyard.push(client, "admin/on-s3", "v1")
    manifest = (await client.get(f"/v2/admin/on-s3/manifests/{digest}",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})).json()
    assert moto_s3.client().stat_object(bucket, "reg/" + blob_key(manifest["layers"][0]["digest"])).size > 0
    moto_s3.empty_bucket(bucket)


@pytest.mark.parametrize("url, reason", [
    ("ftp://host/x", "must start with one of file://, s3://"),
    ("s3://user:pw@bucket", "put credentials in `credentials`"),
    (f"s3://bucket?endpoint=http://127.0.0.1:{free_port()}", "cannot reach S3 endpoint"),
    ("file:///proc/no-such/blobs", "cannot use /proc/no-such/blobs"),
], ids=["unknown-scheme", "credentials-in-url", "unreachable-s3", "unusable-path"])  # stable ids: no port in them
async def test_a_refused_setting_leaves_the_old_store_serving(dockyard: Dockyard, client: httpx.AsyncClient,
                                                              url: str, reason: str) -> None:
    before = await dockyard.push(client, "admin/stays", "v1")
    answer = await client.put(PATH, json={"url": url, "credentials": {"AWS_ACCESS_KEY_ID": "a",
                                                                       "AWS_SECRET_ACCESS_KEY": "b"}})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert reason in answer.json()["detail"]
    assert changes(dockyard) == []
    assert (await client.get(PATH)).json()["source"] == "startup"
    # The old store still serves what it held, and takes new pushes.
    assert (await client.get(f"/v2/admin/stays/manifests/{before}",
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})).status_code == 200
    await dockyard.push(client, "admin/stays", "v2")


async def test_a_probe_the_filesystem_refuses_is_a_refusal(dockyard: Dockyard, client: httpx.AsyncClient,
                                                           tmp_path: Path) -> None:
    # The directory exists, but the probe cannot be written there (a file stands where its
    # folder goes): refused with the reason, as for an object store, not a 500.
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "_probe").write_bytes(b"in the way")
    answer = await client.put(PATH, json={"url": f"file://{tmp_path}/blobs"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"].startswith("the storage setting was not changed: ")
    assert changes(dockyard) == [] and (await client.get(PATH)).json()["source"] == "startup"


async def test_only_global_admins(dockyard: Dockyard) -> None:
    alice = await dockyard.user(role="read-write")
    async with dockyard.client(alice) as as_alice:
        assert (await as_alice.get(PATH)).status_code == 403
        assert (await as_alice.put(PATH, json={"url": "file:///tmp/x"})).status_code == 403
