"""Adapters: SQLite and Postgres views, the event store configuration, settings."""
