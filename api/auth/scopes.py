"""Docker token scopes: `repository:engineering/barca:pull,push`, `registry:catalog:*`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scope:
    type: str
    name: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """`repository:engineering/barca:pull,push` -> Scope; None if malformed."""
        try:
            kind, rest = text.split(":", 1)
            name, actions = rest.rsplit(":", 1)
        except ValueError:
            return None
        kind = kind.split("(", 1)[0]  # `repository(plugin)` is a repository
        return cls(kind, name, frozenset(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scopes(values: list[str]) -> list[Scope]:
    """Scopes from query or form values; one value may hold several, space-separated (OAuth2)."""
    return [s for value in values for part in value.split() if (s := Scope.parse(part))]
