"""The identity read model: accounts, teams, members, team access, access tokens, auth settings.

Access checks read these, so like the registry view they are written in the event
transaction (`projections.inline`) and rebuilt by replaying the log through the same folds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from dockyard.domain.access_token import AccessToken
from dockyard.domain.account import Organization, User
from dockyard.domain.auth_settings import AuthSettings
from dockyard.domain.repository import Repository
from dockyard.domain.team import Team
from dockyard.projections.dialect import Dialect

TABLES = ("accounts", "teams", "team_members", "team_access", "access_tokens", "auth_settings",
          "credential_epochs")


def create_statements(d: Dialect) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, kind TEXT NOT NULL, role TEXT NOT NULL, "
        "password_hash TEXT NOT NULL, source TEXT NOT NULL, active INTEGER NOT NULL, created_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS teams (organization TEXT NOT NULL, name TEXT NOT NULL, "
        "description TEXT NOT NULL, PRIMARY KEY (organization, name))",
        "CREATE TABLE IF NOT EXISTS team_members (organization TEXT NOT NULL, team TEXT NOT NULL, "
        "member TEXT NOT NULL, PRIMARY KEY (organization, team, member))",
        "CREATE INDEX IF NOT EXISTS team_members_member ON team_members (member)",
        "CREATE TABLE IF NOT EXISTS team_access (repository TEXT NOT NULL, organization TEXT NOT NULL, "
        "team TEXT NOT NULL, level TEXT NOT NULL, PRIMARY KEY (repository, team))",
        "CREATE INDEX IF NOT EXISTS team_access_team ON team_access (organization, team)",
        "CREATE TABLE IF NOT EXISTS access_tokens (id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, "
        "secret_hash TEXT NOT NULL, expires_at TEXT, level TEXT NOT NULL, repositories TEXT NOT NULL, "
        "revoked INTEGER NOT NULL, created_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS access_tokens_owner ON access_tokens (owner)",
        "CREATE TABLE IF NOT EXISTS auth_settings (id TEXT PRIMARY KEY, mode TEXT NOT NULL, ldap TEXT NOT NULL)",
        # How many times a user's credentials changed (password, role, deactivation): refresh-token
        # families started at an older epoch are over. No row: epoch 0.
        "CREATE TABLE IF NOT EXISTS credential_epochs (name TEXT PRIMARY KEY, epoch INTEGER NOT NULL)",
    ]


Fold = Callable[[Any], list[tuple[str, dict[str, Any]]]]


def _user_created(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO accounts (name, kind, role, password_hash, source, active, created_at) "
        "VALUES (%(name)s, 'user', %(role)s, %(hash)s, %(source)s, 1, %(at)s)",
        {"name": e.name, "role": e.role, "hash": e.password_hash,
         "source": getattr(e, "source", "managed"), "at": e.timestamp.isoformat()},
    )]


def _organization_created(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO accounts (name, kind, role, password_hash, source, active, created_at) "
        "VALUES (%(name)s, 'organization', 'none', '', 'managed', 1, %(at)s)",
        {"name": e.name, "at": e.timestamp.isoformat()},
    )]


def _account_update(column: str, attribute: str | None, value: Any = None) -> Fold:
    def fold(e: Any) -> list[tuple[str, dict[str, Any]]]:
        v = getattr(e, attribute) if attribute else value
        return [(f"UPDATE accounts SET {column} = %(v)s WHERE name = %(name)s", {"name": e.name, "v": v})]
    return fold


def _credentials_changed(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO credential_epochs (name, epoch) VALUES (%(name)s, 1) "
        "ON CONFLICT (name) DO UPDATE SET epoch = credential_epochs.epoch + 1",
        {"name": e.name},
    )]


def _and(*folds: Fold) -> Fold:
    """One event folded by several folds, in order."""
    def fold(e: Any) -> list[tuple[str, dict[str, Any]]]:
        return [statement for f in folds for statement in f(e)]
    return fold


def _team_created(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO teams (organization, name, description) VALUES (%(org)s, %(name)s, %(description)s)",
        {"org": e.organization, "name": e.name, "description": e.description},
    )]


def _team_recreated(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO teams (organization, name, description) VALUES (%(org)s, %(name)s, %(description)s)",
        {"org": e.organization, "name": e.team, "description": e.description},
    )]


def _member_added(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO team_members (organization, team, member) VALUES (%(org)s, %(team)s, %(user)s)",
        {"org": e.organization, "team": e.team, "user": e.user},
    )]


def _member_removed(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "DELETE FROM team_members WHERE organization = %(org)s AND team = %(team)s AND member = %(user)s",
        {"org": e.organization, "team": e.team, "user": e.user},
    )]


def _team_deleted(e: Any) -> list[tuple[str, dict[str, Any]]]:
    key = {"org": e.organization, "team": e.team}
    return [
        ("DELETE FROM team_members WHERE organization = %(org)s AND team = %(team)s", key),
        ("DELETE FROM team_access WHERE organization = %(org)s AND team = %(team)s", key),
        ("DELETE FROM teams WHERE organization = %(org)s AND name = %(team)s", key),
    ]


def _access_granted(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO team_access (repository, organization, team, level) "
        "VALUES (%(repo)s, %(org)s, %(team)s, %(level)s) "
        "ON CONFLICT (repository, team) DO UPDATE SET level = excluded.level",
        {"repo": e.name, "org": e.organization, "team": e.team, "level": e.level},
    )]


def _access_revoked(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "DELETE FROM team_access WHERE repository = %(repo)s AND team = %(team)s",
        {"repo": e.name, "team": e.team},
    )]


def _token_created(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO access_tokens (id, owner, name, secret_hash, expires_at, level, repositories, revoked, "
        "created_at) VALUES (%(id)s, %(owner)s, %(name)s, %(hash)s, %(expires)s, %(level)s, %(repos)s, 0, %(at)s)",
        {"id": e.token_id, "owner": e.user, "name": e.name, "hash": e.secret_hash, "expires": e.expires_at,
         "level": e.level, "repos": orjson.dumps(e.repositories).decode(), "at": e.timestamp.isoformat()},
    )]


def _token_revoked(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [("UPDATE access_tokens SET revoked = 1 WHERE id = %(id)s", {"id": e.token_id})]


def _auth_changed(e: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(
        "INSERT INTO auth_settings (id, mode, ldap) VALUES ('auth', %(mode)s, %(ldap)s) "
        "ON CONFLICT (id) DO UPDATE SET mode = excluded.mode, ldap = excluded.ldap",
        {"mode": e.mode, "ldap": orjson.dumps(e.ldap, option=orjson.OPT_SORT_KEYS).decode()},
    )]


FOLDS: dict[type, Fold] = {
    User.Created: _user_created,
    User.PasswordChanged: _and(_account_update("password_hash", "password_hash"), _credentials_changed),
    User.RoleChanged: _and(_account_update("role", "role"), _credentials_changed),
    User.Deactivated: _and(_account_update("active", None, 0), _credentials_changed),
    User.Activated: _account_update("active", None, 1),
    Organization.Created: _organization_created,
    Team.Created: _team_created,
    Team.MemberAdded: _member_added,
    Team.MemberRemoved: _member_removed,
    Team.Deleted: _team_deleted,
    Team.Recreated: _team_recreated,
    Repository.TeamAccessGranted: _access_granted,
    Repository.TeamAccessRevoked: _access_revoked,
    AccessToken.Created: _token_created,
    AccessToken.Revoked: _token_revoked,
    AuthSettings.Changed: _auth_changed,
}
