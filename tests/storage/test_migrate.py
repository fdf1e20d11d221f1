"""`dockyard storage migrate`: every blob copied and verified, nothing unverified committed, and
a second run copies only what the first did not."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from dockyard.storage import blob_key
from dockyard.storage.base import BlobStore, StorageError
from dockyard.storage.filesystem import FilesystemStore
from dockyard.storage.memory import MemoryStore
from dockyard.storage.migrate import migrate
from tests.object_stores import MotoS3


def put_blob(store: BlobStore, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    store.write_bytes(blob_key(digest), data)
    return digest


class FailingAfter(MemoryStore):
    """A destination that breaks after `n` committed writes (the migration was interrupted)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def _writer(self, key: str, append: bool):  # noqa: ANN202
        if self.left == 0:
            raise StorageError("connection lost")
        self.left -= 1
        return super()._writer(key, append)


def test_copies_verifies_and_resumes() -> None:
    source = MemoryStore()
    digests = [put_blob(source, os.urandom(1000 + i)) for i in range(5)]
    # A blob whose bytes do not match its name (bit rot, or a bug): never copied.
    rotten = blob_key("sha256:" + "ab" * 32)
    source.write_bytes(rotten, b"not what the name says")
    source.write_bytes("_uploads/x/data", b"in flight")

    # The first run is cut off after two blobs: those are in place, the rest failed.
    destination = FailingAfter(2)
    first = migrate(source, destination)
    assert first.copied == 2 and first.total == 6
    assert len(first.failed) == 4 and rotten in first.failed

    # The second run skips those two and copies the other three; the rotten one fails again,
    # and nothing was ever committed under its name.
    destination.left = 100
    second = migrate(source, destination)
    assert (second.skipped, second.copied, list(second.failed)) == (2, 3, [rotten])
    assert "hash to sha256:" in second.failed[rotten]
    for digest in digests:
        assert destination.read_bytes(blob_key(digest)) == source.read_bytes(blob_key(digest))
    assert not destination.exists(rotten)
    assert not destination.exists("_uploads/x/data")

    # A third run has nothing left to do.
    third = migrate(source, destination)
    assert (third.copied, third.skipped) == (0, 5)


def test_cli_migrates_a_data_directory_to_s3(moto_s3: MotoS3, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    source = FilesystemStore(str(data_dir / "blobs"))
    digests = [put_blob(source, os.urandom(n)) for n in (10, 3 * 1024 * 1024)]
    bucket = moto_s3.new_bucket()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}, **moto_s3.env}
    command = [sys.executable, "-m", "dockyard", "storage", "migrate", "--data-dir", str(data_dir),
               "--to", moto_s3.url(bucket)]

    # A progress bar, then a summary; the blobs are in the bucket.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "] 2/2 blobs" in done.stderr
    assert done.stderr.strip().endswith("copied 2 blob(s) (3.0 MiB), 0 already there, 0 failed")
    client = moto_s3.client()
    for digest in digests:
        assert client.stat_object(bucket, blob_key(digest)).size == source.stat(blob_key(digest))

    # Again: nothing to copy. A data directory that does not exist is refused.
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.stderr.strip().endswith("copied 0 blob(s) (0.0 MiB), 2 already there, 0 failed")
    missing = subprocess.run(command[:6] + [str(tmp_path / "nowhere")] + command[7:], env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "error: no blobs at file://" in missing.stderr
    moto_s3.empty_bucket(bucket)
