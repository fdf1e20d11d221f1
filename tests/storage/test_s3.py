"""The S3 backend passes the contract against a real moto server, and keeps its own promises:
large objects go up in parts, nothing is visible or left over before a commit, appends are
segments that never show as keys, and a bad URL is one clear error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.storage import open_store
from dockyard.storage.base import BlobStore
from dockyard.storage.s3 import S3Store
from tests.object_stores import MotoS3, one_line_error, with_env
from tests.storage.contract import BlobStoreContract


@pytest.fixture
def bucket(moto_s3: MotoS3) -> Iterator[str]:
    name = moto_s3.new_bucket()
    yield name
    moto_s3.empty_bucket(name)


def s3_store(moto_s3: MotoS3, bucket: str, prefix: str = "", **params: str) -> S3Store:
    with with_env(moto_s3.env):
        store = open_store(moto_s3.url(bucket, prefix, **params))
    assert isinstance(store, S3Store)
    return store


class TestS3Store(BlobStoreContract):
    @pytest.fixture
    def store(self, moto_s3: MotoS3, bucket: str) -> BlobStore:
        # Under a prefix, so every key is mapped (and listed back) through it.
        return s3_store(moto_s3, bucket, "registry/one")


MiB = 1024 * 1024


def raw_names(moto_s3: MotoS3, bucket: str) -> list[str]:
    return sorted(o.object_name for o in moto_s3.client().list_objects(bucket, recursive=True))


def open_uploads(moto_s3: MotoS3, bucket: str) -> list[str]:
    return [u.object_name for u in moto_s3.client()._list_multipart_uploads(bucket).uploads]


def test_large_object_goes_up_in_parts_in_constant_memory(moto_s3: MotoS3, bucket: str) -> None:
    import tracemalloc

    store = s3_store(moto_s3, bucket)
    piece = b"x" * MiB

    # 40 MiB are written through one writer: parts go up as they fill, so the writer never
    # holds more than about one part, and nothing is visible before the commit.
    tracemalloc.start()
    with store.writer("big/blob") as w:
        for _ in range(40):
            w.write(piece)
        assert open_uploads(moto_s3, bucket) == ["big/blob"]
        assert raw_names(moto_s3, bucket) == []
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        w.commit()
    assert peak < 4 * 8 * MiB, f"peak {peak / MiB:.1f} MiB"

    # After the commit: one object of 5 parts (8 MiB each), no upload left open.
    info = moto_s3.client().stat_object(bucket, "big/blob")
    assert info.size == 40 * MiB and info.etag.endswith("-5")
    assert open_uploads(moto_s3, bucket) == []


def test_abandoned_writer_aborts_its_upload(moto_s3: MotoS3, bucket: str) -> None:
    store = s3_store(moto_s3, bucket)

    # A writer that sent parts but never committed (the client went away) leaves nothing.
    with store.writer("gone/blob") as w:
        w.write(b"y" * (9 * MiB))
        assert open_uploads(moto_s3, bucket) == ["gone/blob"]
    assert open_uploads(moto_s3, bucket) == []
    assert raw_names(moto_s3, bucket) == []


def test_appends_are_segments_and_move_composes_them(moto_s3: MotoS3, bucket: str) -> None:
    store = s3_store(moto_s3, bucket, "p")
    # Requests of mixed sizes, some under S3's 5 MiB minimum part size, appended to a session.
    pieces = [b"a" * (3 * MiB), b"b" * (6 * MiB), b"c" * 1000, b"d" * (7 * MiB), b"e" * 10]
    with store.writer("_uploads/u/data", append=True) as w:
        w.commit()
    for piece in pieces:
        with store.writer("_uploads/u/data", append=True) as w:
            w.write(piece)
            w.commit()

    # Each request is its own segment object; none is a key, and none was a copy of the rest.
    names = raw_names(moto_s3, bucket)
    assert names[0] == "p/_uploads/u/data"
    assert len(names) == 1 + len(pieces) and all("~" in n for n in names[1:])
    assert list(store.list("_uploads")) == ["_uploads/u/data"]
    whole = b"".join(pieces)
    assert store.stat("_uploads/u/data") == len(whole)
    with store.open_read("_uploads/u/data", 3 * MiB - 2) as f:
        assert f.read(4) == b"aabb"

    # Moving concatenates them on the server into one plain object; the segments go.
    store.move("_uploads/u/data", "blobs/x")
    assert raw_names(moto_s3, bucket) == ["p/blobs/x"]
    assert store.read_bytes("blobs/x") == whole
    assert open_uploads(moto_s3, bucket) == []


def test_overwritten_appendable_object_forgets_its_segments(moto_s3: MotoS3, bucket: str) -> None:
    store = s3_store(moto_s3, bucket)
    with store.writer("obj", append=True) as w:
        w.write(b"old-")
        w.commit()
    with store.writer("obj", append=True) as w:
        w.write(b"segment")
        w.commit()

    # A whole new object replaces it: the old segments are not part of it...
    store.write_bytes("obj", b"new")
    assert store.read_bytes("obj") == b"new"

    # ...nor of what is appended to it afterwards; deleting it removes every piece.
    with store.writer("obj", append=True) as w:
        w.write(b"+more")
        w.commit()
    assert store.read_bytes("obj") == b"new+more"
    store.delete("obj")
    assert raw_names(moto_s3, bucket) == []


def test_redirect_gives_a_presigned_url(moto_s3: MotoS3, bucket: str) -> None:
    import httpx

    # Without `redirect=true` blobs stream through the registry.
    assert s3_store(moto_s3, bucket).redirect_url("blobs/k") is None

    # With it, a client fetches the object from S3 directly.
    store = s3_store(moto_s3, bucket, "pre", redirect="true")
    store.write_bytes("blobs/k", b"direct bytes")
    url = store.redirect_url("blobs/k")
    assert url is not None and "X-Amz-Signature=" in url
    assert httpx.get(url).content == b"direct bytes"



def test_bad_urls_are_one_line_errors(moto_s3: MotoS3, bucket: str) -> None:
    env = moto_s3.env
    # An unknown scheme names every supported one.
    message = one_line_error("ftp://host/x", env)
    assert "'ftp'" in message and "s3://" in message and "file://" in message

    # No bucket, an unknown parameter, no credentials.
    assert "no bucket" in one_line_error(f"s3:///x?endpoint={moto_s3.endpoint}", env)
    assert "colour" in one_line_error(moto_s3.url(bucket, colour="blue"), env)
    assert "AWS_ACCESS_KEY_ID" in one_line_error(moto_s3.url(bucket), {"AWS_ACCESS_KEY_ID": "",
                                                                       "AWS_SECRET_ACCESS_KEY": ""})
    # A bucket that does not exist, and an endpoint nobody listens on.
    assert "'no-such-bucket' does not exist" in one_line_error(moto_s3.url("no-such-bucket"), env)
    from tests.server import free_port

    port = free_port()
    message = one_line_error(f"s3://{bucket}?endpoint=http://127.0.0.1:{port}", env)
    assert f"cannot reach S3 endpoint http://127.0.0.1:{port}" in message


def test_wrong_credentials_are_one_line_errors(tmp_path) -> None:  # noqa: ANN001
    # moto checks signatures only in its auth mode, after a few unauthenticated calls that
    # create a user and an access key (testinfra.md section 3); its own server, because
    # presigned URLs do not work in that mode.
    import boto3

    from tests.object_stores import MotoS3

    server = MotoS3(tmp_path)
    server.start(auth=True)
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="dockyard")
        iam.put_user_policy(UserName="dockyard", PolicyName="s3", PolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'))
        key = iam.create_access_key(UserName="dockyard")["AccessKey"]
        good = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        from minio import Minio

        Minio(f"127.0.0.1:{server.port}", access_key=good["AWS_ACCESS_KEY_ID"],
              secret_key=good["AWS_SECRET_ACCESS_KEY"], secure=False).make_bucket("authbucket")

        # The right key opens the store; a wrong secret is refused at start, in one line.
        with with_env(good):
            open_store(server.url("authbucket")).write_bytes("k", b"v")
        message = one_line_error(server.url("authbucket"), {**good, "AWS_SECRET_ACCESS_KEY": "wrong"})
        assert "refused access to bucket 'authbucket'" in message and "AWS_SECRET_ACCESS_KEY" in message
    finally:
        server.stop()


def test_serve_refuses_a_bad_storage_url_in_one_line(moto_s3: MotoS3, tmp_path) -> None:  # noqa: ANN001
    import os
    import subprocess
    import sys

    from tests.server import free_port

    # `dockyard serve` on a bucket that does not exist: exit status 2, one line, no traceback.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}, **moto_s3.env}
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(tmp_path), "--listen", f"127.0.0.1:{free_port()}",
         "--storage", moto_s3.url("missing-bucket")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: storage: S3 bucket 'missing-bucket' does not exist at {moto_s3.endpoint}; create it first"]
