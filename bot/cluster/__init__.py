"""Coordination across replicas: per-chat mailboxes drained in order, turn records, recovery."""
