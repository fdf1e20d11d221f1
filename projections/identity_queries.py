"""Reads of the identity read model: accounts, teams, grants, tokens, auth settings, and the
facts the access policy needs about one user and one repository."""

from __future__ import annotations

from typing import Any

import orjson

from dockyard.domain.access import RepositoryFacts
from dockyard.domain.team import OWNERS
from dockyard.projections.dialect import Dialect


class IdentityQueries:
    def __init__(self, datastore: Any, dialect: Dialect) -> None:
        self._datastore = datastore
        self._dialect = dialect

    def _rows(self, statement: str, params: dict[str, Any] | None = None,
              cursor: Any | None = None) -> list[dict[str, Any]]:
        """`cursor`: read inside a caller's transaction (a fence) instead of a reading connection."""
        if cursor is not None:
            cursor.execute(self._dialect.sql(statement), params or {})
            return [dict(r) for r in cursor.fetchall()]
        with self._dialect.reading(self._datastore) as reading:
            reading.execute(self._dialect.sql(statement), params or {})
            return [dict(r) for r in reading.fetchall()]

    def _row(self, statement: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        rows = self._rows(statement, params)
        return rows[0] if rows else None

    # -- accounts ------------------------------------------------------------------------------

    def account(self, name: str) -> dict[str, Any] | None:
        return self._row("SELECT name, kind, role, password_hash, source, active, created_at FROM accounts "
                         "WHERE name = %(name)s", {"name": name})

    def user(self, name: str) -> dict[str, Any] | None:
        row = self.account(name)
        return row if row and row["kind"] == "user" else None

    def accounts(self, kind: str | None = None) -> list[dict[str, Any]]:
        statement = "SELECT name, kind, role, source, active, created_at FROM accounts"
        params: dict[str, Any] = {}
        if kind:
            statement += " WHERE kind = %(kind)s"
            params["kind"] = kind
        return self._rows(statement + " ORDER BY name", params)

    def other_active_admins(self, name: str, cursor: Any | None = None) -> int:
        """How many active global admins there are besides `name` (the last-admin rule's count;
        with `cursor`, as seen inside that transaction, under the log's write lock)."""
        rows = self._rows("SELECT COUNT(*) AS n FROM accounts WHERE kind = 'user' AND role = 'admin' "
                          "AND active = 1 AND name <> %(name)s", {"name": name}, cursor)
        return int(rows[0]["n"])

    def credentials_epoch(self, name: str) -> int:
        """How many times `name`'s password, role or active flag changed to their detriment."""
        row = self._row("SELECT epoch FROM credential_epochs WHERE name = %(name)s", {"name": name})
        return int(row["epoch"]) if row else 0

    def accounts_page(self, kind: str | None, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` accounts (of `kind`, if given) in name order after `after` (keyset paging)."""
        clauses, params = ["name > %(after)s"], {"after": after or "", "limit": limit}
        if kind:
            clauses.append("kind = %(kind)s")
            params["kind"] = kind
        return self._rows("SELECT name, kind, role, source, active, created_at FROM accounts WHERE "
                          + " AND ".join(clauses) + " ORDER BY name LIMIT %(limit)s", params)

    # -- teams ---------------------------------------------------------------------------------

    def teams(self, organization: str) -> list[dict[str, Any]]:
        return self._rows("SELECT organization, name, description FROM teams WHERE organization = %(org)s "
                          "ORDER BY name", {"org": organization})

    def team(self, organization: str, name: str) -> dict[str, Any] | None:
        return self._row("SELECT organization, name, description FROM teams WHERE organization = %(org)s "
                         "AND name = %(name)s", {"org": organization, "name": name})

    def members(self, organization: str, team: str) -> list[str]:
        rows = self._rows("SELECT member FROM team_members WHERE organization = %(org)s AND team = %(team)s "
                          "ORDER BY member", {"org": organization, "team": team})
        return [r["member"] for r in rows]

    def memberships(self, user: str) -> list[dict[str, Any]]:
        return self._rows("SELECT organization, team FROM team_members WHERE member = %(user)s "
                          "ORDER BY organization, team", {"user": user})

    def is_owner(self, user: str, organization: str) -> bool:
        return self._row("SELECT 1 AS x FROM team_members WHERE organization = %(org)s AND team = %(owners)s "
                         "AND member = %(user)s", {"org": organization, "owners": OWNERS, "user": user}) is not None

    def team_access(self, repository: str) -> list[dict[str, Any]]:
        return self._rows("SELECT team, level FROM team_access WHERE repository = %(repo)s ORDER BY team",
                          {"repo": repository})

    def team_repositories(self, organization: str, team: str) -> list[dict[str, Any]]:
        """The repositories a team was granted, with the level, by repository name."""
        return self._rows("SELECT repository, level FROM team_access WHERE organization = %(org)s "
                          "AND team = %(team)s ORDER BY repository", {"org": organization, "team": team})

    # -- the facts for the access policy ------------------------------------------------------

    def repository_facts(self, user: str | None, repository: str) -> RepositoryFacts:
        """What the access policy needs to know about `user` (None: anonymous) and `repository`."""
        return self.policy_facts(user, repository)[1]

    def policy_facts(self, user: str | None, repository: str) -> tuple[dict[str, Any] | None, RepositoryFacts]:
        """`user`'s account as it stands now (name, role, active; None when there is no such
        user or no `user`) and `repository_facts(user, repository)`, read in one statement: one
        round trip on PostgreSQL where the repository, the team levels and the owners' team were
        three (the token endpoint asks this once per repository scope)."""
        namespace = repository.split("/", 1)[0] if "/" in repository else ""
        statement = "SELECT 'repository' AS fact, visibility AS value, 0 AS active FROM repositories " \
                    "WHERE name = %(repo)s AND deleted = 0"
        if user is not None:
            statement += (
                " UNION ALL SELECT 'team', ta.level, 0 FROM team_access ta JOIN team_members tm "
                "ON tm.organization = ta.organization AND tm.team = ta.team "
                "WHERE ta.repository = %(repo)s AND tm.member = %(user)s"
                " UNION ALL SELECT 'owner', '', 0 FROM team_members WHERE organization = %(org)s "
                "AND team = %(owners)s AND member = %(user)s"
                " UNION ALL SELECT 'user', role, active FROM accounts WHERE name = %(user)s AND kind = 'user'")
        rows = self._rows(statement, {"repo": repository, "user": user, "org": namespace, "owners": OWNERS})
        repo = [r["value"] for r in rows if r["fact"] == "repository"]
        account = next(({"name": user, "role": r["value"], "active": int(r["active"])}
                        for r in rows if r["fact"] == "user"), None)
        facts = RepositoryFacts(
            exists=bool(repo), public=bool(repo) and repo[0] == "public",
            team_levels=tuple(r["value"] for r in rows if r["fact"] == "team") if repo else (),
            org_owner=any(r["fact"] == "owner" for r in rows))
        return account, facts

    # -- access tokens and settings ------------------------------------------------------------

    def access_token(self, token_id: str) -> dict[str, Any] | None:
        row = self._row("SELECT id, owner, name, secret_hash, expires_at, level, repositories, revoked, created_at "
                        "FROM access_tokens WHERE id = %(id)s", {"id": token_id})
        if row:
            row["repositories"] = orjson.loads(row["repositories"])
        return row

    def access_tokens(self, owner: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT id, owner, name, expires_at, level, repositories, revoked, created_at "
                          "FROM access_tokens WHERE owner = %(owner)s ORDER BY created_at, id", {"owner": owner})
        for row in rows:
            row["repositories"] = orjson.loads(row["repositories"])
        return rows

    def auth_settings(self) -> dict[str, Any]:
        row = self._row("SELECT mode, ldap FROM auth_settings WHERE id = 'auth'")
        if row is None:
            return {"mode": "managed", "ldap": {}}
        return {"mode": row["mode"], "ldap": orjson.loads(row["ldap"])}
