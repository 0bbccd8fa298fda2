"""The event outbox and the ordered, replayable feed of an organization's changes."""
