"""The package type-checks: mypy over `dockyard` (not its tests or benchmarks) finds no error.

The repository root is the package (`package-dir = {"dockyard" = "."}`), which mypy cannot find
through the editable install, so it runs from a folder where `dockyard` is a link to the root.
Settings: `[tool.mypy]` in pyproject.toml. Cold, it takes ~15 s; the cache makes reruns quick.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from tests.conftest import missing

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        missing("mypy (the `test` extra)")
    (tmp_path / "dockyard").symlink_to(ROOT, target_is_directory=True)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache"), "-p", "dockyard"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
