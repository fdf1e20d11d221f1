"""A private, throwaway PostgreSQL cluster a test may stop and start (never the shared one).

`initdb` into a temporary directory and `pg_ctl` on a port of its own, trust authentication on
127.0.0.1, as `scripts/test.sh` makes one for newcomers. As root, the server runs as `postgres`
(PostgreSQL refuses to run as root). Needs the server binaries (Debian: `postgresql`).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

from tests.conftest import missing
from tests.server import free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]), None)
    if found is None:
        missing(f"PostgreSQL server binaries ({name})")
    return found  # type: ignore[return-value]


class PrivateCluster:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _bin("initdb"), _bin("pg_ctl")
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = tempfile.mkdtemp(prefix="dockyard-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self._run(self.initdb, "-D", self.data, "-A", "trust", "-U", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=120)

    def start(self) -> None:
        self._run(self.pg_ctl, "-D", self.data, "-l", os.path.join(self.root, "log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: as a crash, every connection cut at once."""
        self._run(self.pg_ctl, "-D", self.data, "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        subprocess.run([*self.as_postgres, self.pg_ctl, "-D", self.data, "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
