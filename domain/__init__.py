"""The domain: aggregates, events, value objects and rules. Pure: stdlib and eventsourcing only."""
