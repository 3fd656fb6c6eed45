"""The spot universe: the (exchange, instrument) pairs to ingest, derived from the reference tables."""
