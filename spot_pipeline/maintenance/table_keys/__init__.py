"""`repair_table_keys_job`: the keys of the tables the pipeline upserts, restored where they were lost.

The old loader's clean-up rebuilt its tables with `CREATE TABLE ... AS SELECT`, which drops primary
and unique keys; its reloads then added a row per run, so a table can hold several rows per natural
key. On such a table an upsert cannot update a row, and the pipeline refuses to write it
(`spot_pipeline.live_tables`). Per table (the four reference tables, `spot_universe` and
`ohlcv_pair_coverage`), the job keeps one row per natural key, the latest by `updated_at` (ties:
the other columns, as the candle dedupe breaks them), adds the key and reports what it removed.

All or nothing per table: the kept rows go into a copy made from the live definition
(`CREATE TABLE ... LIKE`: same columns, collations and indexes) with the key added; the copy is
verified (one row per key of the original, never an older one than the original holds), then one
atomic rename swaps it in and keeps the original as `<table>_keyless_backup_YYYYMMDD`. Until that
rename the live table is untouched; a leftover copy of a failed run is dropped and rebuilt. A table
that already has its key is left alone, so re-running changes nothing. A dry run only counts.

Writers are kept apart as for the candle dedupe: the repairing step is in the `ohlcv_table_writes`
pool and holds each table's write lock while it copies and swaps, which the reference and universe
assets take while they write.
"""
