"""A real OpenLDAP `slapd` for tests, in a temporary directory, on a free port.

The recipe of testinfra.md section 2: an mdb database under `dc=example,dc=org` with the
`memberof` overlay, admin `cn=admin,dc=example,dc=org` / `adminpw`, users under
`ou=people,dc=example,dc=org` whose password is `<uid>pass`, and group
`cn=admins,ou=groups,dc=example,dc=org`. Entries are loaded online (so `memberOf` is kept),
here with ldap3 rather than `ldapadd`. `slapd` missing skips the tests for a developer and fails
them in CI (`require_tool`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import ldap3

from tests.conftest import require_tool
from tests.server import free_port

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "adminpw"
PEOPLE_DN = f"ou=people,{SUFFIX}"
GROUPS_DN = f"ou=groups,{SUFFIX}"
USERS = ("gordon", "orca", "moby", "ahab")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
MODULE_DIRS = ("/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/ldap", "/usr/lib/aarch64-linux-gnu/ldap")


def password_of(user: str) -> str:
    return f"{user}pass"


def _tool(name: str) -> str:
    """`name` from PATH, or from /usr/sbin (root's PATH may lack it); else skip/fail."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    return found or require_tool(name)


class LdapServer:
    """`start()` a fresh slapd with `users` (+ the admins group), `stop()` it."""

    def __init__(self, directory: Path, users: tuple[str, ...] = USERS) -> None:
        self.slapd = _tool("slapd")
        self.slappasswd = _tool("slappasswd")
        self.directory = Path(directory)
        self.users = users
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @staticmethod
    def user_dn(user: str) -> str:
        return f"uid={user},{PEOPLE_DN}"

    def _hash(self, password: str) -> str:
        return subprocess.run([self.slappasswd, "-s", password], capture_output=True, text=True,
                              check=True).stdout.strip()

    def _config(self) -> str:
        modulepath = next((d for d in MODULE_DIRS if Path(d, "back_mdb.la").exists()
                           or Path(d, "back_mdb.so").exists()), MODULE_DIRS[0])
        schema_dir = Path("/etc/ldap/schema")
        lines = [f"include {schema_dir / (s + '.schema')}" for s in SCHEMAS]
        lines += [
            f"pidfile {self.directory / 'slapd.pid'}",
            f"modulepath {modulepath}",
            "moduleload back_mdb",
            "moduleload memberof",
            "database mdb",
            "maxsize 104857600",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ADMIN_DN}"',
            f"rootpw {self._hash(ADMIN_PASSWORD)}",
            f"directory {self.directory / 'data'}",
            "index objectClass,uid,member eq",
            "overlay memberof",
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by * read",
        ]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 20.0) -> None:
        data = self.directory / "data"
        shutil.rmtree(data, ignore_errors=True)  # reused data makes the load fail ("Already exists")
        data.mkdir(parents=True)
        conf = self.directory / "slapd.conf"
        conf.write_text(self._config())
        log = open(self.directory / "slapd.log", "ab")  # noqa: SIM115 - owned by the process
        # -d 0: stay in the foreground, so the Popen pid is slapd's own.
        self.process = subprocess.Popen([self.slapd, "-f", str(conf), "-h", self.url + "/", "-d", "0"],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited {self.process.returncode}:\n{self.log()}")
            try:
                conn = ldap3.Connection(ldap3.Server(self.url, connect_timeout=1, get_info=ldap3.NONE),
                                        user=ADMIN_DN, password=ADMIN_PASSWORD, receive_timeout=2)
                if conn.bind():
                    break
            except ldap3.core.exceptions.LDAPException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"slapd did not start:\n{self.log()}")
            time.sleep(0.1)
        try:
            self._load(conn)
        finally:
            conn.unbind()

    def _load(self, conn: ldap3.Connection) -> None:
        def add(dn: str, classes: list[str], attributes: dict[str, object]) -> None:
            if not conn.add(dn, classes, attributes):
                raise RuntimeError(f"ldap add {dn}: {conn.result}")

        add(SUFFIX, ["dcObject", "organization"], {"o": "Example", "dc": "example"})
        for ou in ("people", "groups"):
            add(f"ou={ou},{SUFFIX}", ["organizationalUnit"], {"ou": ou})
        for user in self.users:
            self.add_user(user, password_of(user), conn)
        members = [self.user_dn(u) for u in ("gordon", "ahab") if u in self.users]
        if members:
            add(f"cn=admins,{GROUPS_DN}", ["groupOfNames"], {"cn": "admins", "member": members})

    def add_user(self, user: str, password: str, conn: ldap3.Connection | None = None) -> None:
        """Add a person to the directory (as the admin)."""
        own = conn is None
        if conn is None:
            conn = ldap3.Connection(ldap3.Server(self.url, get_info=ldap3.NONE), user=ADMIN_DN,
                                    password=ADMIN_PASSWORD, auto_bind=True)
        try:
            ok = conn.add(self.user_dn(user), ["inetOrgPerson"], {
                "uid": user, "cn": user, "sn": user, "mail": f"{user}@example.org",
                "userPassword": self._hash(password)})
            if not ok:
                raise RuntimeError(f"ldap add {user}: {conn.result}")
        finally:
            if own:
                conn.unbind()

    def set_password(self, user: str, password: str) -> None:
        """Change a person's password in the directory (as the admin), as a directory admin or
        the person would: Dockyard is not told."""
        conn = ldap3.Connection(ldap3.Server(self.url, get_info=ldap3.NONE), user=ADMIN_DN,
                                password=ADMIN_PASSWORD, auto_bind=True)
        try:
            if not conn.modify(self.user_dn(user), {"userPassword": [(ldap3.MODIFY_REPLACE, [self._hash(password)])]}):
                raise RuntimeError(f"ldap modify {user}: {conn.result}")
        finally:
            conn.unbind()

    def delete_user(self, user: str) -> None:
        conn = ldap3.Connection(ldap3.Server(self.url, get_info=ldap3.NONE), user=ADMIN_DN,
                                password=ADMIN_PASSWORD, auto_bind=True)
        try:
            if not conn.delete(self.user_dn(user)):
                raise RuntimeError(f"ldap delete {user}: {conn.result}")
        finally:
            conn.unbind()

    def can_bind(self, user: str, password: str) -> bool:
        """Whether the directory itself accepts these credentials (a check on the fixture)."""
        conn = ldap3.Connection(ldap3.Server(self.url, get_info=ldap3.NONE), user=self.user_dn(user),
                                password=password)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    def log(self) -> str:
        path = self.directory / "slapd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None
