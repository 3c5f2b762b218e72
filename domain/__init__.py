"""Aggregates and their rules: stdlib and eventsourcing.domain only."""
