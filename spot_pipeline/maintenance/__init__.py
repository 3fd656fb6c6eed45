"""Maintenance jobs that rewrite the market tables: run by hand or on a schedule that is off by default."""
