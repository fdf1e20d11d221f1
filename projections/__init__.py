"""Read models folded from the event log, and their rebuild."""
