"""Maintenance jobs that repair the market tables, one folder each, on the same plan as the domains:
`timestamp_migration` (run by hand; its schedule is off by default), `deduplication` (weekly, on by
default) and `table_keys` (run by hand, where an old clean-up dropped a table's key)."""
