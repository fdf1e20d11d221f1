"""Request and response bodies of the management API (`/api/v0/`), as pydantic models.

JSON field names are camelCase, as DTR's API (`accessLevel`, `expiresAt`, `bindDn`). Enumerated
values are `Literal`s, so a wrong role, visibility or level is a 422 before any command runs and
`/openapi.json` lists the allowed values. Names are checked by the domain (400), which owns
their grammar.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from dockyard.domain.account import MIN_PASSWORD_LENGTH
from dockyard.domain.auth_settings import LDAP_URL_PATTERN, check_ldap_url
from dockyard.domain.errors import DomainError

PASSWORD_RULE = ("At least `minLength` characters (the password policy, `DOCKYARD_PASSWORD_MIN_LENGTH`); "
                 "a shorter one is a 400 problem.")

Role = Literal["none", "read-only", "read-write", "admin"]
Visibility = Literal["private", "public"]
TeamLevel = Literal["read-only", "read-write", "admin"]
AccessLevel = Literal["none", "read-only", "read-write", "admin"]
AuthMode = Literal["none", "managed", "ldap"]


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# -- accounts ----------------------------------------------------------------------------------

class NewUser(Model):
    type: Literal["user"]
    name: str = Field(description="Lowercase letters, digits and `.`, `_`, `-` separators; also the namespace.")
    password: str = Field(description=PASSWORD_RULE, json_schema_extra={"minLength": MIN_PASSWORD_LENGTH})
    role: Role = Field("none", description="Global role: that level on every repository.")


class NewOrganization(Model):
    type: Literal["organization"]
    name: str


NewAccount = Annotated[NewUser | NewOrganization, Field(discriminator="type")]


class Account(Model):
    name: str
    type: Literal["user", "organization"]
    role: Role | None = Field(None, description="Users only.")
    active: bool | None = Field(None, description="Users only; a deactivated user cannot sign in.")
    source: Literal["managed", "ldap"] | None = Field(None, description="Users only.")
    created_at: str


class AccountList(Model):
    accounts: list[Account]


class AccountChange(Model):
    """Only the fields given change. `role` and `active`: global admins. `password`: admins or the user."""

    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(None, description=PASSWORD_RULE, json_schema_extra={"minLength": MIN_PASSWORD_LENGTH})


# -- teams -------------------------------------------------------------------------------------

class NewTeam(Model):
    name: str
    description: str = ""


class TeamSummary(Model):
    organization: str
    name: str
    description: str


class Team(TeamSummary):
    members: list[str]


class TeamList(Model):
    teams: list[TeamSummary]


class MemberList(Model):
    members: list[str]


# -- repositories ------------------------------------------------------------------------------

class NewRepository(Model):
    name: str = Field(description="The name under the namespace (no `/`).")
    visibility: Visibility = "private"
    description: str = ""


class RepositoryChange(Model):
    visibility: Visibility | None = None
    description: str | None = None


class Repository(Model):
    namespace: str
    name: str
    full_name: str
    visibility: Visibility
    description: str
    created_at: str
    access_level: AccessLevel = Field(description="The caller's level on this repository.")


class RepositoryList(Model):
    repositories: list[Repository]


class Tag(Model):
    name: str
    digest: str
    updated_at: str
    updated_by: str


class TagList(Model):
    repository: str
    tags: list[Tag]


class TeamAccessChange(Model):
    access_level: TeamLevel


class TeamAccess(Model):
    team: str
    access_level: TeamLevel


class TeamAccessList(Model):
    repository: str
    team_access: list[TeamAccess]


# -- access tokens -----------------------------------------------------------------------------

class NewToken(Model):
    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = Field(None, description="ISO 8601; none: the token does not expire.")
    scope: TeamLevel = Field("read-only", description="Caps what the token may do, below its user's own access.")
    repositories: list[str] = Field(default_factory=list, description="Limits it to these repositories; empty: all.")


class Token(Model):
    id: str
    name: str
    scope: TeamLevel
    repositories: list[str]
    expires_at: str | None
    created_at: str
    revoked: bool


class CreatedToken(Token):
    token: str = Field(description="The secret: use it as the password (or a Bearer token). Shown only here.")


class TokenList(Model):
    tokens: list[Token]


# -- auth settings -----------------------------------------------------------------------------

class LdapSettings(Model):
    url: str = Field("", description="ldap://host:port or ldaps://host:port",
                     json_schema_extra={"pattern": LDAP_URL_PATTERN})
    bind_dn: str = ""
    bind_password: str | None = Field(None, description="Write-only; omitted: the stored one is kept.")
    user_base_dn: str = ""
    user_filter: str = "(objectClass=inetOrgPerson)"
    username_attribute: str = "uid"
    start_tls: bool = False

    @model_validator(mode="after")
    def _url_scheme(self) -> LdapSettings:
        try:
            if self.url:
                check_ldap_url(self.url)
        except DomainError as exc:  # a 422 naming the field, as pydantic's own checks
            raise ValueError(exc.message) from None
        return self


class AuthSettingsChange(Model):
    mode: AuthMode
    ldap: LdapSettings | None = Field(None, description="Omitted: the stored LDAP settings are kept.")


class LdapSettingsView(Model):
    url: str = ""
    bind_dn: str = ""
    bind_password_set: bool = False
    user_base_dn: str = ""
    user_filter: str = "(objectClass=inetOrgPerson)"
    username_attribute: str = "uid"
    start_tls: bool = False


class AuthSettings(Model):
    mode: AuthMode
    ldap: LdapSettingsView


class LdapTestResult(Model):
    ok: bool
    users: int | None = Field(None, description="Entries matching the user filter under the base DN.")
    error: str | None = None


# -- errors ------------------------------------------------------------------------------------

class Problem(BaseModel):
    """An RFC 9457 problem document: every 4xx/5xx answer of `/api/v0/`."""

    type: str = Field(description="`urn:dockyard:problem:<kind>`, or `about:blank`.")
    title: str
    status: int
    detail: str
    context: Any = Field(None, description="What the error is about (names, values).")
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors: loc, msg, type.")


PROBLEM_SCHEMA = "#/components/schemas/Problem"
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "A problem document (RFC 9457): 400 invalid, 401 no or wrong credentials, 403 denied, "
                           "404 not found (or not readable), 409 conflict, 422 schema mismatch, 429 throttled",
            "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_SCHEMA}}}},
}


# -- audit trail -------------------------------------------------------------------------------

class AuditEvent(Model):
    position: int = Field(description="The event's position in the log (the paging cursor).")
    recorded_at: str = Field(description="When it happened, ISO 8601 UTC.")
    action: str = Field(description="A stable name: `manifest.pushed`, `tag.moved`, `team.member_added`, ...")
    actor: str
    client_address: str
    token: str | None = Field(description="The id of the access token used, if any.")
    namespace: str | None
    repository: str | None
    tag: str | None
    digest: str | None
    details: dict[str, Any]


class AuditEventPage(Model):
    events: list[AuditEvent]
    next_cursor: str | None = Field(description="The `cursor` of the next page (also in the `Link` header); "
                                    "null on the last page.")


class ProjectionStatus(Model):
    name: str
    kind: Literal["inline", "followed"] = Field(description="inline: written in the event transaction.")
    position: int = Field(description="The last log position folded.")
    head: int = Field(description="The log's last position.")
    lag_events: int
    lag_seconds: float = Field(description="Age of the oldest event not yet folded (0 when caught up).")
    rows: int
    state: str = Field(description="`inline`, `caught up`, `behind`, or `failed at N`.")
    error: str | None = Field(description="Why the projection stopped, when it failed.")
    retry_at: str | None = Field(None, description="When a failed projection is tried again (ISO 8601, UTC); "
                                                   "`POST /api/v0/projections/{name}/retry` brings it to now.")


class ProjectionList(Model):
    projections: list[ProjectionStatus]


# -- search --------------------------------------------------------------------------------------

class SearchHit(Repository):
    tags: list[str] = Field(description="The repository's tag names.")
    pushed_at: str = Field(description="When a tag was last pushed or moved ('' when never).")


class SearchResults(Model):
    repositories: list[SearchHit] = Field(description="Best match first: exact name, then prefix, then a whole "
                                                      "word, then a substring; the recently pushed first "
                                                      "among equals.")


# -- history -------------------------------------------------------------------------------------

class TagStep(Model):
    position: int = Field(description="The event's position in the log (usable as `?at=`).")
    recorded_at: str = Field(description="When, ISO 8601 UTC.")
    action: Literal["pushed", "moved", "deleted"] = Field(
        description="`pushed`: the tag appeared (first push, or again after a delete); `moved`: it pointed "
                    "elsewhere; `deleted`: it was removed.")
    digest: str = Field(description="What the tag pointed at after this step (`deleted`: what it had pointed at).")
    previous: str | None = Field(description="What it pointed at before (null when it did not exist).")
    actor: str
    client_address: str
    token: str | None = Field(description="The id of the access token used, if any.")


class TagHistory(Model):
    repository: str
    tag: str
    steps: list[TagStep] = Field(description="Oldest first.")


class AccountAccess(Model):
    account: str
    repository: str
    position: int = Field(description="The log position the answer is as of (the head when no `at` was given).")
    access_level: AccessLevel = Field(description="The account's level on the repository then.")
    actions: list[str] = Field(description="The Docker token actions that level allowed then (`pull`, `push`, …).")


# -- restore -------------------------------------------------------------------------------------

class TagRestore(Model):
    at: str | None = Field(None, description="Point the tag where it pointed at this instant (RFC 3339 time or "
                                             "log position).")
    digest: str | None = Field(None, description="Point the tag at this manifest, once pushed to the repository.")

    @model_validator(mode="after")
    def _exactly_one(self) -> TagRestore:
        if (self.at is None) == (self.digest is None):
            raise ValueError("give exactly one of 'at' or 'digest'")
        return self


class TagRestored(Model):
    repository: str
    tag: str
    digest: str


class RepositoryRestored(Model):
    repository: str
    tags: dict[str, str] = Field(description="Each tag brought back, and the digest it points at.")
    team_access: dict[str, str] = Field(description="Each team granted its level again.")
    skipped_teams: list[str] = Field(description="Teams that had access but no longer exist.")


class LogLines(Model):
    """Recent log lines of every replica, oldest first, each naming its replica (all components when
    `component` is null)."""
    component: str | None
    lines: list[str]
