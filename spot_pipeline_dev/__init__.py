"""The development kit: what tests, benchmarks and demos need and production never runs.

- `fake_ccdata`: a real HTTP server on localhost that imitates the CCData APIs, with fault injection.
- `demo`: the offline demo behind `make demo`.
- `legacy_tables`: builders of the candle table as older deployments left it (BIGINT trade
  timestamps, no keys), for the migration and deduplication tests and benchmarks.
- `synthetic_candles`: made-up candle rows for the write benchmarks.
- `schema_doc`: renders the column tables of `database_schema.md` from the SQLAlchemy metadata.

It is not part of the wheel: it imports `spot_pipeline`, never the other way round.
"""
