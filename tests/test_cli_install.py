"""The first start's install (scripts/lib.sh) says nothing a user has to decode.

setuptools warns ("Editable installation. … folders in your working directory with the same
name as your package …") when it installs our root-mapped package through an import hook, and
recent pip prints that warning. `quiet_pip` leaves it out. This builds a throwaway venv with
the current pip, as `ensure_venv` does (~15 s here: the one slow test in this folder).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_editable_install_prints_no_setuptools_notice(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    script = f'''
        set -euo pipefail
        . "{ROOT}/scripts/lib.sh"
        quiet_pip "{venv}" install --upgrade pip
        quiet_pip "{venv}" install --no-deps -e "{ROOT}"
    '''
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Editable installation" not in done.stderr
    assert "BuildBackendWarning" not in done.stderr
    assert done.stderr.strip() == "", done.stderr
    # ...and the install is the editable one: `dockyard` is this tree.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import dockyard, os; print(os.path.dirname("
                            "dockyard.__file__))"], capture_output=True, text=True, check=True, timeout=60)
    assert Path(where.stdout.strip()) == ROOT
