"""Settings > General: read and change the domain name (one aggregate, one event per change)."""

from __future__ import annotations

from dockyard.commands.registry import Registry
from dockyard.domain.general_settings import GeneralSettings


class General:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def domain_name(self) -> str:
        """The domain name set by an admin, or '' when none is."""
        settings = self.registry.load(GeneralSettings, GeneralSettings.create_id())
        return settings.domain_name if settings is not None else ""

    def change_domain_name(self, domain_name: str) -> str:
        """Set the domain name (`InvalidRequest` for one that is not a host name); returns it."""

        def command() -> str:
            settings = self.registry.load(GeneralSettings, GeneralSettings.create_id()) or GeneralSettings()
            if settings.change_domain_name(domain_name):
                self.registry.save(settings)
            return settings.domain_name

        return self.registry.retrying(command)
