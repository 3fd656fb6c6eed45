"""Maintenance jobs that rewrite the candle table, one folder each, on the same plan as the domains:
`timestamp_migration` (run by hand; its schedule is off by default) and `deduplication` (weekly, on
by default)."""
