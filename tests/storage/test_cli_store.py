"""The admin verbs that work on blobs (`gc run`, `uploads purge`) use the store the registry
uses: the one chosen at run time under Settings > Storage, else `--storage`."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.api.settings import Settings
from dockyard.bootstrap import registry_on
from dockyard.cli import _blob_store
from dockyard.commands.persistence import event_store_env
from dockyard.commands.secrets import SecretStore
from dockyard.commands.storage_settings import StorageSetting
from dockyard.storage import open_store
from dockyard.storage.filesystem import FilesystemStore


def test_admin_verbs_follow_the_storage_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"), storage=f"file://{tmp_path}/startup")
    os.makedirs(settings.data_dir)
    registry = registry_on(event_store_env(settings.data_dir, None))
    try:
        # No setting yet: the startup store.
        store = _blob_store(settings, registry)
        assert isinstance(store, FilesystemStore) and store.root == str(tmp_path / "startup")

        # An admin chose another store at run time: the verbs use it.
        StorageSetting(registry, SecretStore(registry), open_store).change(f"file://{tmp_path}/chosen", {})
        store = _blob_store(settings, registry)
        assert isinstance(store, FilesystemStore) and store.root == str(tmp_path / "chosen")
    finally:
        registry.close()


def test_migrate_copies_from_the_store_chosen_at_run_time(tmp_path: Path) -> None:
    import hashlib
    import subprocess
    import sys

    from dockyard.storage import blob_key

    # The registry was started on the data directory's blobs, then an admin moved it to another
    # store under Settings > Storage, where the blobs now are.
    data_dir = tmp_path / "data"
    os.makedirs(data_dir / "blobs")
    registry = registry_on(event_store_env(str(data_dir), None))
    try:
        StorageSetting(registry, SecretStore(registry), open_store).change(f"file://{tmp_path}/chosen", {})
    finally:
        registry.close()
    data = b"pushed after the switch"
    key = blob_key("sha256:" + hashlib.sha256(data).hexdigest())
    FilesystemStore(str(tmp_path / "chosen")).write_bytes(key, data)

    # Without --from, migrate copies from that store, not from the one the registry started on.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    done = subprocess.run([sys.executable, "-m", "dockyard", "storage", "migrate", "--data-dir", str(data_dir),
                           "--to", f"file://{tmp_path}/dest"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"migrating blobs from file://{tmp_path}/chosen (Settings > Storage)" in done.stderr
    assert (tmp_path / "dest" / key).read_bytes() == data
