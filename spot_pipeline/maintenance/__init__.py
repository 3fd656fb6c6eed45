"""Maintenance jobs that rewrite the market tables: the timestamp migration (run by hand; its schedule
is off by default) and the deduplication (weekly, on by default)."""
