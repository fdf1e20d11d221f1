"""Dockyard: a trusted on-premises container image registry on an event log."""
