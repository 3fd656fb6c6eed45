"""`adoption_preflight_job` and `python -m spot_pipeline.maintenance.adoption`: what stands between a
`market` database an older loader filled and the pipeline, looked at before anything changes a byte.

It inspects every `market` table the pipeline reads or writes, and the server, and lists per table
what it found and the exact step to take, in the order to take them:

1. BIGINT trade timestamps: the timestamp migration, with the invalid epochs counted (the zeros the
   old loader wrote for days without trades included) and the option that handles them;
2. duplicate candles and a missing candle key: the candle dedupe;
3. tables whose key was lost: the key repair;
4. collations and character sets: fine when the pipeline can compare them, or what to convert;
5. privileges the pipeline's user lacks, and `local_infile` (the fast write path);
6. a server time zone that is not UTC, and what it changes.

It never writes: it reads through an engine that creates nothing (`MarketDatabase.untouched_engine`),
on read-only connections, and takes no lock. `findings` orders and renders; `survey` asks the database.
The job's ops and the command line print the same report.
"""
