"""The `dockyard` command as a newcomer meets it: which data it works on, and one-line errors.

Each test runs `python -m dockyard` as a subprocess (no server needed, except the two `serve`
tests, which stop it as soon as it says it is serving). A refusal is one line on stderr
starting `error:`, exit status 2, no traceback, and nothing created on disk.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_ADMIN_URL
from tests.server import free_port

ADMIN_VERBS = [
    ["users", "list"],
    ["events", "tail"],
    ["projections", "rebuild"],
    ["projections", "status"],
    ["audit", "query"],
    ["uploads", "purge", "--dry-run"],
    ["gc", "run", "--dry-run"],
]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    return {**env, **extra}


def dockyard(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True,
                          cwd=cwd, env=env or clean_env(), stdin=stdin, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit 2, a single `error: …` line on stderr containing each of `expected` (after
    the `dockyard: using …` line, when the verb got as far as opening its data)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("dockyard: using ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory as `dockyard serve` leaves it after its first start (admin created)."""
    from dockyard.bootstrap import registry_on
    from dockyard.commands.persistence import event_store_env
    from tests.on_registry import accounts_on

    path = tmp_path / "data"
    registry = registry_on(event_store_env(str(path), None))
    try:
        accounts_on(registry).ensure_admin("first-password")
    finally:
        registry.close()
    return path


# -- admin verbs: which data they use --------------------------------------------------------------


@pytest.mark.parametrize("verb", ADMIN_VERBS, ids=lambda v: " ".join(v[:2]))
def test_admin_verbs_refuse_a_missing_data_dir_and_create_nothing(verb: list[str], tmp_path: Path) -> None:
    # Run from another folder with no --data-dir: the default ./data is not there.
    result = dockyard(*verb, cwd=tmp_path)
    assert_one_line_error(result, f"no data directory {tmp_path / 'data'}",
                          f"looked for {tmp_path / 'data' / 'dockyard.db'}", "--data-dir")
    assert list(tmp_path.iterdir()) == []



def test_a_data_dir_without_an_event_log_is_refused_and_stays_empty(tmp_path: Path) -> None:
    result = dockyard("users", "list", "--data-dir", str(tmp_path))
    assert_one_line_error(result, f"no Dockyard event log in {tmp_path}", str(tmp_path / "dockyard.db"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verb", ADMIN_VERBS, ids=lambda v: " ".join(v[:2]))
def test_admin_verbs_say_which_data_they_use(verb: list[str], data_dir: Path) -> None:
    result = dockyard(*verb, cwd=data_dir.parent)  # the default ./data, as after ./scripts/serve.sh
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == f"dockyard: using SQLite {data_dir / 'dockyard.db'}"
    if verb[0] == "users":
        assert result.stdout.split("\t")[:2] == ["admin", "admin"]


def test_admin_verb_refuses_a_database_that_does_not_exist() -> None:
    name = "dockyard_absent_" + uuid.uuid4().hex[:8]
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    result = dockyard("users", "list", "--database-url", url)
    # Named, whatever the reason (no such database here; no server at all on a developer's machine).
    assert_one_line_error(result, f"cannot open PostgreSQL database {name} on ")


def test_admin_verb_refuses_a_database_without_an_event_log(postgres) -> None:
    url = postgres.create()
    name = url.rsplit("/", 1)[1]
    result = dockyard("events", "tail", "--database-url", url)
    assert_one_line_error(result, f"PostgreSQL database {name} on ", "holds no Dockyard event log",
                          "registry_events")
    import psycopg

    with psycopg.connect(url) as conn:  # nothing was created in it
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)


def test_password_prompt_without_a_terminal_is_one_line(data_dir: Path) -> None:
    result = dockyard("users", "create", "bob", "--data-dir", str(data_dir), stdin=subprocess.DEVNULL)
    assert_one_line_error(result, "no terminal", "'bob'", "DOCKYARD_USER_PASSWORD")
    listed = dockyard("users", "list", "--data-dir", str(data_dir))
    assert "bob" not in listed.stdout

    created = dockyard("users", "create", "bob", "--data-dir", str(data_dir),
                       env=clean_env(DOCKYARD_USER_PASSWORD="bobs-password"))
    assert created.returncode == 0, created.stderr
    assert "bob\tnone" in dockyard("users", "list", "--data-dir", str(data_dir)).stdout


# -- serve ---------------------------------------------------------------------------------------


def test_serve_refuses_an_unknown_storage_scheme_before_creating_anything(tmp_path: Path) -> None:
    result = dockyard("serve", "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{free_port()}",
                      "--storage", "s4://bucket/blobs")
    assert_one_line_error(result, "storage: ", "'s4'", "s4://bucket/blobs")
    assert not (tmp_path / "data").exists()


def test_serve_refuses_a_database_it_cannot_open_before_creating_anything(tmp_path: Path) -> None:
    name = "dockyard_absent_" + uuid.uuid4().hex[:8]
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    result = dockyard("serve", "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{free_port()}",
                      "--database-url", url)
    assert_one_line_error(result, f"cannot open PostgreSQL database {name} on ")
    assert not (tmp_path / "data").exists()


def test_serve_on_a_busy_port_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        busy = f"127.0.0.1:{holder.getsockname()[1]}"
        result = dockyard("serve", "--data-dir", str(tmp_path / "data"), "--listen", busy)
    assert_one_line_error(result, f"cannot listen on {busy}", "in use", "--listen")
    assert "serving on" not in result.stdout
    assert not (tmp_path / "data").exists()


def test_serve_refuses_a_listen_address_that_is_no_host_and_port(tmp_path: Path) -> None:
    result = dockyard("serve", "--data-dir", str(tmp_path / "data"), "--listen", "localhost")
    assert_one_line_error(result, "--listen 'localhost'", "HOST:PORT")


class Serving:
    """`dockyard serve` started in the background; stdout read line by line."""

    def __init__(self, data_dir: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "serve", "--data-dir", str(data_dir), "--listen",
             f"127.0.0.1:{self.port}", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True)

    def wait_for_line(self, text: str) -> list[str]:
        """Lines of stdout up to and including the first containing `text` (bounded by the process)."""
        assert self.process.stdout is not None
        seen = []
        for line in self.process.stdout:
            seen.append(line)
            if text in line:
                return seen
        raise AssertionError(f"serve exited without {text!r}: {seen}\n{self.stop()}")

    def stop(self) -> str:
        """SIGTERM, wait; stderr."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            _, err = self.process.communicate(timeout=10)
        return err


@pytest.fixture
def serving() -> Iterator[list[Serving]]:
    started: list[Serving] = []
    yield started
    for s in started:
        s.stop()


def test_serving_on_is_printed_once_the_port_is_bound_and_a_later_admin_password_is_reported(
        data_dir: Path, serving: list[Serving]) -> None:
    # data_dir already has its admin: the password given now is not applied, and serve says so.
    srv = Serving(data_dir, clean_env(DOCKYARD_ADMIN_PASSWORD="a-new-password"))
    serving.append(srv)
    srv.wait_for_line("Dockyard serving on")
    # The moment it says so, the port takes connections (they wait for the app in the backlog).
    socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
    err = srv.stop()
    assert "DOCKYARD_ADMIN_PASSWORD ignored: user 'admin' already exists" in err
    assert "Traceback" not in err


def test_first_start_applies_the_admin_password_without_a_warning(tmp_path: Path, serving: list[Serving]) -> None:
    srv = Serving(tmp_path / "data", clean_env(DOCKYARD_ADMIN_PASSWORD="the-first-password"))
    serving.append(srv)
    lines = srv.wait_for_line("Dockyard serving on")
    assert not any("Created user 'admin' with password" in line for line in lines)  # chosen, not generated
    assert "DOCKYARD_ADMIN_PASSWORD ignored" not in srv.stop()


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) if entry.name.isdigit() else None
        except OSError:
            continue
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def libraries(pid: int) -> str:
    """The files mapped into `pid` (its shared libraries among them)."""
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_the_supervisor_of_serve_loads_neither_the_app_nor_uvicorn(tmp_path: Path, serving: list[Serving]) -> None:
    """Issue 14: the `dockyard serve` process that stays for the server's life (the supervisor of
    two workers) loads neither the app, its settings nor uvicorn: its first-start work runs in a
    child that has exited by "serving on". No multiprocessing resource tracker either: the tree is
    the supervisor and its two workers, and each worker loads the app itself."""
    srv = Serving(tmp_path / "data", clean_env(DOCKYARD_ADMIN_PASSWORD="pw-for-supervisor"), "--workers", "2")
    serving.append(srv)
    srv.wait_for_line("Dockyard serving on")
    assert httpx.get(f"http://127.0.0.1:{srv.port}/healthz", timeout=60).status_code == 200
    # Compiled parts of what the app and uvicorn import: pydantic (settings, FastAPI), cryptography
    # (tokens, TLS), SQLite and libpq (the event log), uvloop and httptools (uvicorn's server).
    compiled = ("_pydantic_core", "cryptography", "_sqlite3", "psycopg", "uvloop", "httptools")
    supervisor = libraries(srv.process.pid)
    assert not [name for name in compiled if name in supervisor]
    status = Path(f"/proc/{srv.process.pid}/status").read_text()
    assert int(status.split("VmRSS:")[1].split()[0]) < 40 * 1024, status  # KiB; it was 88 MiB
    children = process_tree(srv.process.pid)[1:]
    assert len(children) == 2, [Path(f"/proc/{pid}/cmdline").read_text() for pid in children]
    assert all("_pydantic_core" in libraries(pid) and "uvloop" in libraries(pid) for pid in children)


def wait_for_workers(supervisor: int, count: int, other_than: frozenset[int] = frozenset()) -> list[int]:
    """The supervisor's `count` children once there are that many, none of them in `other_than`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = process_tree(supervisor)[1:]
        if len(children) == count and not set(children) & other_than:
            return children
        time.sleep(0.2)
    raise AssertionError(f"workers of {supervisor}: {process_tree(supervisor)[1:]}, wanted {count} new")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_the_supervisor_replaces_a_dead_worker_restarts_on_sighup_and_stops_on_sigterm(
        tmp_path: Path, serving: list[Serving]) -> None:
    srv = Serving(tmp_path / "data", clean_env(DOCKYARD_ADMIN_PASSWORD="pw-for-supervisor"), "--workers", "2")
    serving.append(srv)
    srv.wait_for_line("Dockyard serving on")
    url = f"http://127.0.0.1:{srv.port}/healthz"
    assert httpx.get(url, timeout=60).status_code == 200
    first = wait_for_workers(srv.process.pid, 2)
    os.kill(first[0], signal.SIGKILL)  # a worker dies: a new one takes its place
    second = wait_for_workers(srv.process.pid, 2, frozenset(first[:1]))
    assert first[1] in second
    os.kill(srv.process.pid, signal.SIGHUP)  # every worker replaced, one by one
    third = wait_for_workers(srv.process.pid, 2, frozenset(second))
    assert httpx.get(url, timeout=60).status_code == 200
    os.kill(srv.process.pid, signal.SIGTERM)
    assert srv.process.wait(30) == 0
    assert not [pid for pid in third if Path(f"/proc/{pid}").exists()]  # stopped and reaped
    err = srv.stop()
    assert "Child process [%d] died" % first[0] in err and "Received SIGHUP" in err, err
    assert "Traceback" not in err, err


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not Path("/proc/self/status").exists(),
                    reason="glibc's malloc, read through /proc")
def test_a_serving_process_returns_a_freed_19_mib_block_to_the_system() -> None:
    """glibc's dynamic mmap threshold would keep it (and every later one) in the heap: after one
    such block was mapped and freed, the next ones came from the heap and stayed resident."""
    code = ("import re\n"
            "from dockyard.worker import tune_malloc\n"
            "tune_malloc()\n"
            "def rss(): return int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
            "before = rss()\n"
            "for _ in range(3):\n"
            "    block = bytearray(19 << 20)\n"
            "    del block\n"
            "print((rss() - before) // 1024)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 4, result.stdout  # MiB kept; 19 without the tuning


def test_a_worker_loads_ldap3_only_for_a_directory(tmp_path: Path) -> None:
    """What a worker builds (the app from its factory) does not import ldap3 (~5 MiB of RSS per
    worker); a deployment in LDAP mode loads it at its first directory call."""
    code = ("import sys; from dockyard.api.app import factory; factory(); "
            "print(sorted(m for m in ('ldap3', 'pyasn1') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=clean_env(DOCKYARD_DATA_DIR=str(tmp_path / "data")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send `data` on a fresh connection; what the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    return answer


def test_a_client_trying_tls_first_gets_400_without_a_warning(tmp_path: Path, serving: list[Serving]) -> None:
    # skopeo, podman and docker try HTTPS first on an insecure registry: a ClientHello on this port.
    srv = Serving(tmp_path / "data", clean_env(DOCKYARD_ADMIN_PASSWORD="pw-for-tls-test"))
    serving.append(srv)
    srv.wait_for_line("Dockyard serving on")
    assert httpx.get(f"http://127.0.0.1:{srv.port}/healthz", timeout=60).status_code == 200
    client_hello = bytes.fromhex("16030100a5010000a10303") + bytes(32) + b"\x00"
    assert raw_exchange(srv.port, client_hello).startswith(b"HTTP/1.1 400 ")
    assert raw_exchange(srv.port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    err = srv.stop()
    assert err.count("Invalid HTTP request received.") == 1, err  # the garbage, not the handshake


def test_serve_acts_as_system_and_admin_verbs_as_the_os_user(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    """Rule 6: an admin verb's events name the OS user who ran it; `serve` is no admin verb —
    each request names its caller, and what the server does unasked is `system` (with one
    worker, uvicorn runs in this very context, so an OS user set here would stamp them all)."""
    import getpass

    import dockyard.cli as cli
    from dockyard.domain.actor import current_actor

    seen: dict[str, str] = {}
    monkeypatch.setattr(cli, "serve", lambda args: seen.setdefault("serve", current_actor.get().name) and 0)
    monkeypatch.setattr(cli, "tail", lambda args: seen.setdefault("tail", current_actor.get().name) and 0)
    cli.main(["serve", "--data-dir", str(tmp_path / "data")])
    cli.main(["events", "tail", "--data-dir", str(tmp_path / "data")])
    assert seen == {"serve": "system", "tail": getpass.getuser()}
