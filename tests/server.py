"""A real `dockyard serve` process for tests: start, stop, SIGKILL, restart on the same data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DockyardServer:
    def __init__(self, data_dir: Path, database_url: str | None, admin_password: str,
                 workers: int = 1, extra_env: dict[str, str] | None = None, tls: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.admin_password = admin_password
        self.workers = workers
        self.extra_env = extra_env or {}
        self.tls = tls  # serve --tls: https, its own CA (the health check does not verify it)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"

    @property
    def host(self) -> str:
        """`host:port`, as clients name the registry."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update(DOCKYARD_ADMIN_PASSWORD=self.admin_password, **self.extra_env)
        cmd = [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(self.data_dir),
               "--listen", self.host, "--workers", str(self.workers), *(["--tls"] if self.tls else [])]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockyard exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1, verify=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dockyard did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, auth: tuple[str, str] | None = ("admin", "")) -> httpx.Client:
        """An httpx client with HTTP Basic as admin (the default) or the given user, or none."""
        if auth is not None and auth[0] == "admin" and not auth[1]:
            auth = ("admin", self.admin_password)
        return httpx.Client(base_url=self.url, auth=auth, timeout=60)
