"""Authentication and authorisation for `/v2/`, and the token service.

- `credentials` — the one parser of `Authorization` headers (Basic, Bearer), and client addresses;
- `scopes` — Docker token scopes;
- `tokens` — the token service: registry JWTs and refresh tokens, issued, verified (cached,
  re-checked every RECHECK_SECONDS), rotated;
- `guard` — `Auth`: who calls a `/v2/` route and whether they may, with the challenge if not;
- `routes` — `/auth/token` (GET, and the OAuth2 form POST).

Who may do what is `domain.access`; whether a credential is valid is `commands.accounts` and
`commands.access_tokens` (`domain.access_token.is_usable`), for every door alike.
"""

from dockyard.api.auth.credentials import client_address
from dockyard.api.auth.guard import Auth
from dockyard.api.auth.scopes import Scope, parse_scopes
from dockyard.api.auth.tokens import RECHECK_SECONDS, REFRESH_TTL_SECONDS, Caller

__all__ = ["RECHECK_SECONDS", "REFRESH_TTL_SECONDS", "Auth", "Caller", "Scope", "client_address", "parse_scopes"]
