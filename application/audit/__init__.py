"""The audit trail: the log as canonical records in a hash chain, exported, verified, and
anchored by a digest written with every transaction (docs/audit.md)."""
