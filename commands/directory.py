"""LDAP authentication (ldap3): search for the user with a service account, then bind as them.

Settings are DTR's: server URL (`ldap://`, `ldaps://`, or `ldap://` + StartTLS), a search
bind DN and password, the user base DN, a user filter and the username attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockyard.domain.errors import InvalidRequest

if TYPE_CHECKING:
    import ldap3

# ldap3 is imported by the methods that talk to a directory, not here: this module is loaded by
# every serving process, and only one in LDAP mode needs ldap3 (~5 MiB of RSS per worker).

TIMEOUT = 5
# Operational attributes the directory keeps of an entry's last change: OpenLDAP and most
# servers maintain `modifyTimestamp`; `pwdChangedTime` is the password policy overlay's.
CHANGE_ATTRIBUTES = ("modifyTimestamp", "pwdChangedTime")


def _generalized_time(value: Any) -> datetime | None:
    """An LDAP GeneralizedTime (`20261203190000Z`, maybe with a fraction) as a UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value[0] if isinstance(value, list | tuple) and value else value).strip()
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class LdapConfig:
    url: str
    bind_dn: str = ""
    bind_password: str = ""
    user_base_dn: str = ""
    user_filter: str = "(objectClass=inetOrgPerson)"
    username_attribute: str = "uid"
    start_tls: bool = False

    @classmethod
    def from_settings(cls, ldap: dict[str, Any], bind_password: str) -> LdapConfig:
        return cls(
            url=str(ldap.get("url") or ""), bind_dn=str(ldap.get("bindDn") or ""), bind_password=bind_password,
            user_base_dn=str(ldap.get("userBaseDn") or ""),
            user_filter=str(ldap.get("userFilter") or "(objectClass=inetOrgPerson)"),
            username_attribute=str(ldap.get("usernameAttribute") or "uid"),
            start_tls=bool(ldap.get("startTls")),
        )


class DirectoryError(Exception):
    """The directory could not say: unreachable, or a service bind or search that failed."""


class LdapDirectory:
    def __init__(self, config: LdapConfig) -> None:
        if not config.url.startswith(("ldap://", "ldaps://")):
            raise InvalidRequest("the LDAP URL must start with ldap:// or ldaps://", {"url": config.url})
        self.config = config

    def _connection(self, user: str | None, password: str | None) -> ldap3.Connection:
        import ldap3

        server = ldap3.Server(self.config.url, connect_timeout=TIMEOUT, get_info=ldap3.NONE)
        conn = ldap3.Connection(server, user=user, password=password, receive_timeout=TIMEOUT,
                                raise_exceptions=False, auto_bind=ldap3.AUTO_BIND_NONE)
        conn.open()
        if self.config.start_tls and not self.config.url.startswith("ldaps://"):
            conn.start_tls()
        return conn

    def _service(self) -> ldap3.Connection:
        conn = self._connection(self.config.bind_dn or None, self.config.bind_password or None)
        if not conn.bind():
            raise DirectoryError(f"search bind failed: {conn.result.get('description')}")
        return conn

    def find_user(self, username: str) -> str | None:
        """The DN of the one directory entry for `username`, or None. `DirectoryError` or ldap3's
        `LDAPException` when the directory cannot say."""
        from ldap3.utils.conv import escape_filter_chars

        attribute = escape_filter_chars(self.config.username_attribute)
        query = f"(&{self.config.user_filter}({attribute}={escape_filter_chars(username)}))"
        conn = self._service()
        try:
            conn.search(self.config.user_base_dn, query, attributes=[])
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        finally:
            conn.unbind()
        return entries[0]["dn"] if len(entries) == 1 else None

    def changed_since(self, username: str, since: datetime) -> bool:
        """Whether `username`'s directory entry is gone or was changed (its password included) at
        or after `since`. The directory records changes to the second, so a change in the same
        second as `since` counts as after it. `DirectoryError` when the directory cannot say."""
        from ldap3.core.exceptions import LDAPException
        from ldap3.utils.conv import escape_filter_chars

        attribute = escape_filter_chars(self.config.username_attribute)
        query = f"(&{self.config.user_filter}({attribute}={escape_filter_chars(username)}))"
        try:
            conn = self._service()
            try:
                if not conn.search(self.config.user_base_dn, query, attributes=list(CHANGE_ATTRIBUTES)) \
                        and conn.result.get("result") not in (0, 32):  # 32: no such object (base gone)
                    raise DirectoryError(f"search failed: {conn.result.get('description')}")
                entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            finally:
                conn.unbind()
        except LDAPException as exc:
            raise DirectoryError(str(exc)) from exc
        if len(entries) != 1:
            return True
        found = entries[0].get("raw_attributes") or entries[0].get("attributes") or {}
        stamps = [_generalized_time(v.decode() if isinstance(v, bytes) else v)
                  for name in CHANGE_ATTRIBUTES for v in (found.get(name) or [])[:1]]
        floor = since.astimezone(UTC).replace(microsecond=0)
        return any(stamp is None or stamp >= floor for stamp in stamps) if stamps else False

    def authenticate(self, username: str, password: str) -> bool:
        """Search for the user, then bind as them with `password`. False for any failure."""
        if not password:  # an empty password is an anonymous bind in LDAP: never a login
            return False
        from ldap3.core.exceptions import LDAPException

        try:
            dn = self.find_user(username)
            if dn is None:
                return False
            conn = self._connection(dn, password)
            try:
                return bool(conn.bind())
            finally:
                conn.unbind()
        except (LDAPException, DirectoryError):
            return False

    def test(self) -> dict[str, Any]:
        """DTR's "test connection": bind with the search account and count matching users."""
        from ldap3.core.exceptions import LDAPException

        try:
            conn = self._service()
            try:
                conn.search(self.config.user_base_dn, self.config.user_filter, attributes=[])
                users = len([e for e in conn.response or [] if e.get("type") == "searchResEntry"])
            finally:
                conn.unbind()
            return {"ok": True, "users": users}
        except (LDAPException, DirectoryError) as exc:
            return {"ok": False, "error": str(exc)}
