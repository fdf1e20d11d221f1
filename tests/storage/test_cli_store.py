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
