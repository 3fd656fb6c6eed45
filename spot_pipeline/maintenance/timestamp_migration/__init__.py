"""The timestamp migration of `cc_ohlcv_spot_1d_raw`: BIGINT unix seconds to DATETIME (UTC), in SQL.

The live table is never altered. `cc_ohlcv_spot_1d_raw_migrating` is made from the live definition
(same columns in the same order, defaults, nullability, charset, collation, keys and indexes) with the
four trade timestamps as DATETIME. The database then copies and converts the rows in datetime-ordered
chunks (ranges of `datetime`, which every legacy copy has, keyed or not), verifying each chunk against
the original right after copying it; on MySQL/MariaDB several chunks are worked on at once, each on its
own connection. One atomic rename finally puts the copy in place and keeps the original as
`cc_ohlcv_spot_1d_raw_bigint_backup_YYYYMMDD` (UTC date).

The modules follow the job: `layout` (what the live table looks like, and its migrating copy),
`epochs` (the conversion and which values are valid), `preflight` (the inspection before anything
changes), `chunks` (how the table is split), `copying` (copy and verify), `swap` (rename and clean
up), then the job's `ops`, `schedules` and `definitions`. Once every deployment is migrated, this
folder can be deleted as a whole.

Time zones: the conversion is arithmetic on a fixed origin and never goes through a zone. MySQL and
MariaDB compute `TIMESTAMP'1970-01-01 00:00:00' + INTERVAL n SECOND` (FROM_UNIXTIME would render in
the session zone, and fails past 2038); SQLite uses `strftime(..., n, 'unixepoch')`, which is UTC.
Verification maps every value back with the inverse (TIMESTAMPDIFF, strftime('%s')).

Valid epochs are whole seconds from 1 (1970-01-01 00:00:01) to 4102444800 (2100-01-01). Anything else
is counted by category (zero, which the old loader wrote for a day without trades; negative;
milliseconds; out of range) and handled by an `InvalidEpochPolicy`: "stop" (the default: nothing is
swapped while any remain), "null" (stored as NULL, as the pipeline stores a day without trades) or
"milliseconds" (values in the millisecond range are divided by 1000, truncating to the second; any
other invalid value stops). The lossy policies are safe only because the backup keeps the
original values.

Re-running is always safe: until the rename the original is untouched, and a migrating table left by
a failed run is dropped and rebuilt, never trusted. A verification only holds while no one else
writes the original, so `copy_and_verify` and `swap_tables` must run under one hold of the table's
write lock.

Keeping writers apart. Ingestion, deduplication and this job write the table only while holding its
write lock (`MarketDatabase.write_lock`: a MySQL named lock, or an OS file lock beside the SQLite
file; the server or the OS releases it if the holder dies, so a crash leaves no stale lock). Their
writing steps also share the Dagster pool `ohlcv_table_writes`, so the daemon does not schedule them
side by side.

Why copy, verify and swap are one step. A verification only holds while no one writes the original,
and Dagster may run each step in its own process, so no lock can span two steps. The copy, the
verification and the rename therefore run in one step under one hold of the lock: what is swapped is
exactly what was verified, and a concurrent writer is blocked until the swap is done, after which
its rows go into the migrated table. Rows written before that step are in the original when it is
copied. Verifying each chunk right after copying it also finds its rows still in the database's cache.
"""
