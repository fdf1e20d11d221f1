"""Settings > Storage in the portal (Chromium): an admin moves the registry to S3 (moto) by
filling the form, a refused store shows its reason and leaves S3 in force, and the credentials
never appear on the page."""

from __future__ import annotations

import pytest

from dockyard.storage import blob_key
from tests.conftest import ADMIN_PASSWORD
from tests.e2e.clients import push_blob, sha256
from tests.e2e.portal.conftest import shoot, sign_in
from tests.object_stores import MotoS3
from tests.server import DockyardServer, free_port

pytestmark = pytest.mark.e2e


def test_an_admin_switches_storage_to_s3_in_the_portal(portal_server: DockyardServer, context,
                                                       moto_s3: MotoS3) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    bucket = moto_s3.new_bucket()
    secret = "portal-secret-" + bucket
    page = context.new_page()
    sign_in(page, portal_server, "admin", ADMIN_PASSWORD)
    page.goto(portal_server.url + "/settings")
    page.get_by_role("link", name="Storage").click()
    expect(page.get_by_text("Chosen at start with")).to_be_visible()

    # S3 with its credentials: probed, saved, in force; the page names the credentials only.
    page.get_by_label("Storage URL").fill(moto_s3.url(bucket, "portal"))
    page.get_by_label("Credentials").fill(f"AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY={secret}")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"s3://{bucket}/portal", exact=True)).to_be_visible()
    expect(page.get_by_text("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY")).to_be_visible()
    assert secret not in page.content()
    shoot(page, "settings-storage-s3")

    # A store that cannot be reached is refused with the reason; S3 stays in force.
    page.get_by_label("Storage URL").fill(f"s3://{bucket}?endpoint=http://127.0.0.1:{free_port()}")
    page.get_by_label("Credentials").fill("AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot reach S3 endpoint")
    expect(page.get_by_text(f"s3://{bucket}/portal", exact=True)).to_be_visible()
    shoot(page, "settings-storage-refused")

    # A blob pushed now lands in the bucket.
    data = b"stored through the portal's choice"
    with portal_server.client() as http:
        assert push_blob(http, "admin/portal-storage", data, sha256(data)).status_code == 201
    assert moto_s3.client().stat_object(bucket, "portal/" + blob_key(sha256(data))).size == len(data)
    moto_s3.empty_bucket(bucket)
