"""`deduplicate_ohlcv_job`: one row per candle in cc_ohlcv_spot_1d_raw, and the keys that keep it so.

Steps: count -> delete duplicates -> verify -> enforce the natural key. A table whose unique key on
the natural key already rules duplicates out (and that has every key the run could add) skips them
all after a look at its keys, so the weekly run costs nothing on a keyed table. A candle is identified by
(datetime, exchange, symbol_unmapped); of several rows of one candle the one with the latest
`collected_at` is kept (ties and NULLs: `table_deduplication`, docs/duplicates.md). The SQL lives
in `table_deduplication.deduplicate_table` (generic over table, key and ordering) and `natural_key`
(the candle table's keys); the ops in `ops.py` order the steps, hold the write lock and report.

The deleting and key-adding steps hold the table's write lock (`MarketDatabase.write_lock`) and share
the Dagster pool `ohlcv_table_writes` with ingestion and the timestamp migration, so they never write
the table at the same time. Works on the legacy table too (BIGINT trade timestamps, no primary key),
before or after the migration. Re-running converges: a second run deletes nothing.
"""
