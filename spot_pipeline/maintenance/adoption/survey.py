"""The preflight's questions to the database, each on a read-only connection of an engine that
creates nothing: the candle table, the other tables the pipeline reads or writes, and the server."""

from __future__ import annotations

import re

import sqlalchemy as sa

from spot_pipeline.db.dialect import add_days, is_mysql, row_count
from spot_pipeline.db.engine import read_only_connection
from spot_pipeline.db.inspection import ProblemKind, inspect_table
from spot_pipeline.db.schema import cc_ohlcv_spot_1d_raw, metadata
from spot_pipeline.live_tables import (
    DEDUPLICATION_JOB,
    KEY_REPAIR_JOB,
    MIGRATION_JOB,
    LiveTableProblem,
    table_problems,
)
from spot_pipeline.maintenance.adoption.findings import NOTHING, Finding, Stage
from spot_pipeline.maintenance.deduplication import natural_key
from spot_pipeline.maintenance.table_keys.ops import REPAIRABLE
from spot_pipeline.maintenance.table_keys.queries import survey_keys
from spot_pipeline.maintenance.timestamp_migration import layout, preflight

CANDLES = cc_ohlcv_spot_1d_raw.name
# What the pipeline's user needs on the schema: the runs (the candle writer stages keys in a
# session-private table), then the maintenance jobs (copies, renames, keys).
RUN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "CREATE TEMPORARY TABLES")
MAINTENANCE_PRIVILEGES = ("ALTER", "DROP", "INDEX")


def adoption_findings(engine: sa.Engine, schema_name: str) -> list[Finding]:
    """Everything the preflight looks at, unordered (see `findings.ordered`)."""
    return [
        *candle_table_findings(engine, schema_name),
        *table_findings(engine, schema_name),
        *server_findings(engine, schema_name),
    ]


def candle_table_findings(engine: sa.Engine, schema_name: str) -> list[Finding]:
    """The candle table: its trade timestamp layout and invalid epochs, its keys and duplicates, and
    candles the old loader stored before their day was over."""
    with read_only_connection(engine) as connection:
        if not inspect_table(connection, schema_name, CANDLES).exists:
            return [Finding(Stage.NOTE, CANDLES, "missing", "nothing: created with its keys on first use")]
        try:
            bigint = layout.timestamp_layout(connection, schema_name) is layout.TimestampLayout.BIGINT
        except layout.UnexpectedTableShape as error:
            return [
                Finding(Stage.MIGRATE, CANDLES, str(error), "bring the table to database_schema.md by hand")
            ]
    findings = [_migration_finding(engine, schema_name)] if bigint else []
    with read_only_connection(engine) as connection:
        findings += [_duplicates_finding(connection, schema_name), *_incomplete_days(connection)]
        findings += _text_findings(connection, schema_name, cc_ohlcv_spot_1d_raw)
    return findings


def _migration_finding(engine: sa.Engine, schema_name: str) -> Finding:
    # Goes with the timestamp migration folder once every deployment is migrated.
    survey = preflight.inspect_original(engine, schema_name).survey
    assert survey is not None, "a BIGINT table is surveyed"
    found = f"trade timestamps are BIGINT unix seconds; {survey.rows:,} rows"
    step = f"run {MIGRATION_JOB} (dry_run: true first)"
    if survey.invalid_total:
        zeros = sum(counts["zero"] for counts in survey.invalid.values())
        found += f"; not seconds since 1970: {survey.describe()}"
        handled_by = "'null'" if zeros == survey.invalid_total else "'null' (or fix the others by hand)"
        step += f" with invalid_epochs: {handled_by}"
        if zeros:
            step += f"; the {zeros:,} zeros are the old loader's days without trades, stored as NULL"
    return Finding(Stage.MIGRATE, CANDLES, found, step)


def _duplicates_finding(connection: sa.Connection, schema_name: str) -> Finding:
    keys = natural_key.ohlcv_key_statuses(connection, schema_name)
    missing = [key.name for key in keys if not key.present]
    duplicates = natural_key.count_ohlcv_duplicates(connection, schema_name)
    found = f"{duplicates.duplicates:,} of {duplicates.examined:,} rows duplicate a candle"
    found += f"; keys missing: {', '.join(missing)}" if missing else "; keys present"
    if not missing and not duplicates.duplicates:
        return Finding(Stage.DEDUPLICATE, CANDLES, found, NOTHING)
    step = f"run {DEDUPLICATION_JOB} with add_unique_key: true (dry_run: true first), after the migration"
    return Finding(Stage.DEDUPLICATE, CANDLES, found, step)


def _incomplete_days(connection: sa.Connection) -> list[Finding]:
    """Candles collected before their day ended: the old loader stored the current day too, stamped
    with the server's clock."""
    c = cc_ohlcv_spot_1d_raw.c
    day_over = add_days(connection, c.datetime, 1)
    minutes = server_offset_minutes(connection)
    if minutes:
        day_over = sa.func.date_add(day_over, sa.text(f"INTERVAL {int(minutes)} MINUTE"))
    early = c.collected_at < day_over
    count = row_count(connection, cc_ohlcv_spot_1d_raw, early)
    if not count:
        return []
    first, last = connection.execute(
        sa.select(sa.func.min(c.datetime), sa.func.max(c.datetime)).where(early)
    ).one()
    found = f"{count:,} candles were stored before their day was over (by their collected_at)"
    step = (
        f"backfill {first:%Y-%m-%d} to {last:%Y-%m-%d} once the steps above are done: each run replaces them"
    )
    return [Finding(Stage.NOTE, CANDLES, found, step)]


def table_findings(engine: sa.Engine, schema_name: str) -> list[Finding]:
    """Every other table the pipeline reads or writes: missing, keyless, its text."""
    findings = []
    with read_only_connection(engine) as connection:
        for table in metadata.sorted_tables:
            if table is cc_ohlcv_spot_1d_raw:
                continue
            if not inspect_table(connection, schema_name, table.name).exists:
                findings.append(Finding(Stage.NOTE, table.name, "missing", "nothing: created on first use"))
                continue
            findings += [
                _problem_finding(connection, schema_name, table, problem)
                for problem in table_problems(connection, schema_name, table)
                if problem.kind is not ProblemKind.CHARSET
            ]
            findings += _text_findings(connection, schema_name, table)
    return findings


def _problem_finding(
    connection: sa.Connection, schema_name: str, table: sa.Table, problem: LiveTableProblem
) -> Finding:
    if problem.kind is not ProblemKind.KEY:
        return Finding(Stage.NOTE, table.name, problem.found, problem.fix)
    declared, order_column = REPAIRABLE[table.name]
    duplicates = survey_keys(connection, schema_name, declared, order_column).duplicates
    found = f"{problem.found}; {duplicates:,} rows duplicate a key"
    return Finding(Stage.REPAIR_KEYS, table.name, found, f"run {KEY_REPAIR_JOB} (dry_run: true first)")


def _text_findings(connection: sa.Connection, schema_name: str, table: sa.Table) -> list[Finding]:
    """The collations of the table's text columns (fine, whichever), or a character set to convert."""
    shape = inspect_table(connection, schema_name, table.name)
    if not shape.collations:
        return []
    found = f"text in {', '.join(sorted(set(shape.collations.values())))}"
    fixes = [
        problem.fix
        for problem in table_problems(connection, schema_name, table)
        if problem.kind is ProblemKind.CHARSET
    ]
    return [
        Finding(Stage.TEXT, table.name, found, fixes[0] if fixes else "nothing: compared across collations")
    ]


def server_findings(engine: sa.Engine, schema_name: str) -> list[Finding]:
    """The user's privileges on the schema, the fast write path, the server's time zone."""
    if not is_mysql(engine):
        return []
    with read_only_connection(engine) as connection:
        findings = [_privileges_finding(connection, schema_name), _local_infile_finding(connection)]
        findings.append(_schema_default_finding(connection, schema_name))
        findings.append(_time_zone_finding(connection))
    return findings


def _privileges_finding(connection: sa.Connection, schema_name: str) -> Finding:
    grantee = _grantee(connection)
    granted = _granted_privileges(connection, grantee, schema_name)
    missing = [name for name in (*RUN_PRIVILEGES, *MAINTENANCE_PRIVILEGES) if name not in granted]
    if not missing:
        return Finding(
            Stage.PRIVILEGES, "server", f"{grantee} has every privilege the pipeline uses", NOTHING
        )
    runs = [name for name in missing if name in RUN_PRIVILEGES]
    found = f"{grantee} lacks {', '.join(missing)} on {schema_name}" + (
        " (the runs need them)" if runs else " (the maintenance jobs need them)"
    )
    return Finding(
        Stage.PRIVILEGES, "server", found, f"GRANT {', '.join(missing)} ON `{schema_name}`.* TO {grantee}"
    )


def _grantee(connection: sa.Connection) -> str:
    user, host = str(connection.exec_driver_sql("SELECT CURRENT_USER()").scalar_one()).rsplit("@", 1)
    return f"'{user}'@'{host}'"


def _granted_privileges(connection: sa.Connection, grantee: str, schema_name: str) -> set[str]:
    """Privileges the grantee holds on every table of the schema: global, or on a matching database."""
    parameters = {"grantee": grantee}
    granted = set(
        connection.execute(
            sa.text("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = :grantee"),
            parameters,
        ).scalars()
    )
    schema_grants = connection.execute(
        sa.text(
            "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
            "WHERE GRANTEE = :grantee"
        ),
        parameters,
    )
    granted |= {
        privilege for pattern, privilege in schema_grants if _database_pattern(pattern).fullmatch(schema_name)
    }
    return granted


def _database_pattern(pattern: str) -> re.Pattern[str]:
    """A GRANT's database name as a regex: `%` and `_` are wildcards, `\\_` and `\\%` literal."""
    parts = re.split(r"(\\[_%]|[_%])", pattern)
    translated = {"%": ".*", "_": "."}
    return re.compile("".join(translated.get(part, re.escape(part.lstrip("\\"))) for part in parts))


def _local_infile_finding(connection: sa.Connection) -> Finding:
    if connection.exec_driver_sql("SELECT @@global.local_infile").scalar():
        return Finding(Stage.PRIVILEGES, "server", "local_infile is ON: candles are bulk loaded", NOTHING)
    return Finding(
        Stage.PRIVILEGES,
        "server",
        "local_infile is OFF (MySQL 8's default): candles are written by multi-row statements, slower",
        "optional, for speed: SET GLOBAL local_infile = 1, and local_infile = 1 under [mysqld] to keep it",
    )


def _schema_default_finding(connection: sa.Connection, schema_name: str) -> Finding:
    collation = connection.execute(
        sa.text("SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :schema"),
        {"schema": schema_name},
    ).scalar()
    server = connection.exec_driver_sql("SELECT @@global.collation_server").scalar()
    found = (
        f"the schema defaults to {collation} (the server to {server}): tables the pipeline creates take it"
    )
    return Finding(Stage.TEXT, "server", found, "nothing (MARKET_DB_COLLATION chooses another)")


def _time_zone_finding(connection: sa.Connection) -> Finding:
    zone, system = connection.exec_driver_sql("SELECT @@global.time_zone, @@system_time_zone").one()
    minutes = server_offset_minutes(connection)
    named = f"{zone} ({system})" if zone == "SYSTEM" else str(zone)
    if not minutes:
        return Finding(Stage.TIME_ZONE, "server", f"time zone {named}: UTC", NOTHING)
    found = f"time zone {named}, {minutes / 60:+g} h from UTC"
    step = (
        "nothing for the pipeline, which pins its sessions to UTC; but values the old loader left to "
        "CURRENT_TIMESTAMP (collected_at) are this server's clock: the dedupe compares them among "
        "themselves, and a run replaces them with UTC ones. To rule it out: default_time_zone = '+00:00'"
    )
    return Finding(Stage.TIME_ZONE, "server", found, step)


def server_offset_minutes(connection: sa.Connection) -> int:
    """How far the server's own clock (its global time zone) is from UTC, in minutes (0 on SQLite)."""
    if not is_mysql(connection):
        return 0
    # The pipeline's sessions are pinned to UTC: look at the server's own clock for a moment.
    connection.exec_driver_sql("SET time_zone = @@global.time_zone")
    minutes = connection.exec_driver_sql("SELECT TIMESTAMPDIFF(MINUTE, UTC_TIMESTAMP(), NOW())").scalar_one()
    connection.exec_driver_sql("SET time_zone = '+00:00'")
    return 15 * round(int(minutes) / 15)
