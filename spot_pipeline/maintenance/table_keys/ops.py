"""The steps of `repair_table_keys_job`: survey the keys of the tables the pipeline upserts, then
rebuild each table that lost its key. They order the steps, hold the locks and report; the SQL is in
`queries`."""

from enum import StrEnum

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from spot_pipeline.db import schema
from spot_pipeline.db.locks import OHLCV_WRITE_POOL
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.transient import error_name
from spot_pipeline.maintenance.table_keys import queries
from spot_pipeline.metadata import markdown_table
from spot_pipeline.timeutils import utc_now

# Each table the key repair looks after, with the column whose latest value wins.
REPAIRABLE = {
    schema.cc_exchanges_general.name: (schema.cc_exchanges_general, "updated_at"),
    schema.cc_instruments_spot.name: (schema.cc_instruments_spot, "updated_at"),
    schema.cc_assets.name: (schema.cc_assets, "updated_at"),
    schema.cc_asset_market_data.name: (schema.cc_asset_market_data, "updated_at"),
    schema.spot_universe.name: (schema.spot_universe, "selected_at"),
    schema.ohlcv_pair_coverage.name: (schema.ohlcv_pair_coverage, "updated_at"),
}
RepairableTable = StrEnum("RepairableTable", {name: name for name in REPAIRABLE})


class TableKeysConfig(dg.Config):
    dry_run: bool = Field(
        default=False,
        description="Only report, per table, whether its key is there and how many rows a repair would "
        "remove: nothing is written and no lock is taken.",
    )
    keep_backup: bool = Field(
        default=True,
        description="Keep each repaired table's original as <table>_keyless_backup_YYYYMMDD (UTC date). "
        "False drops it after the verified swap.",
    )
    tables: list[RepairableTable] = Field(
        default=list(REPAIRABLE),
        validate_default=True,
        min_length=1,
        description="The tables to look at (default: every table the pipeline upserts besides the candles, "
        "which deduplicate_ohlcv_job looks after).",
    )


@dg.op
def survey_table_keys(
    context: dg.OpExecutionContext, config: TableKeysConfig, market_db: MarketDatabase
) -> list[str]:
    """Report, per table, whether the key its upserts rely on is there and, where it is not, its rows,
    the rows beyond the first of their key and a few of those keys. Reads only. Returns the tables
    to repair (none on a dry run)."""
    with market_db.connect() as connection:
        surveys = [_survey(connection, market_db.schema_name, name) for name in config.tables]
    for survey in surveys:
        if survey.needs_repair:
            context.log.info(
                f"{survey.table}: no key on ({', '.join(survey.key)}); {survey.duplicates:,} of "
                f"{survey.rows:,} rows duplicate a key and would be removed"
            )
    context.add_output_metadata(
        {
            "tables": markdown_table([_survey_row(survey) for survey in surveys], SURVEY_COLUMNS),
            "tables_without_key": sum(survey.needs_repair for survey in surveys),
            "rows_to_remove": sum(survey.duplicates for survey in surveys),
            "examples": _examples(surveys),
            "dry_run": config.dry_run,
        }
    )
    return [] if config.dry_run else [survey.table for survey in surveys if survey.needs_repair]


@dg.op(pool=OHLCV_WRITE_POOL)
def repair_table_keys(
    context: dg.OpExecutionContext, config: TableKeysConfig, market_db: MarketDatabase, tables: list[str]
) -> None:
    """Rebuild each table that lost its key, one at a time under its write lock: the latest row of
    every key (by updated_at) into a copy that has the key, verified, then swapped in atomically, the
    original kept as a dated backup. A table that fails is left untouched and named at the end."""
    reports, failures = [], {}
    for name in tables:
        try:
            reports.append(_rebuild(market_db, name, config.keep_backup))
        except (queries.KeyRepairRefused, ValueError) as error:
            failures[name] = str(error)
        except sa.exc.DBAPIError as error:
            failures[name] = error_name(error)
        if name in failures:
            context.log.error(f"{name}: not repaired, left as it was: {failures[name]}")
    for report in reports:
        original = report.backup if config.keep_backup else "dropped"
        context.log.info(f"{report.table}: removed {report.removed:,} rows, key added; original: {original}")
    rows = [_report_row(report, config.keep_backup) for report in reports]
    context.add_output_metadata(
        {
            "repaired": markdown_table(rows, REPORT_COLUMNS),
            "rows_removed": sum(report.removed for report in reports),
        }
    )
    if failures:
        raise dg.Failure(
            description="; ".join(f"{name}: {reason}" for name, reason in failures.items()),
        )


def _survey(connection: sa.Connection, schema_name: str, name: str) -> queries.KeySurvey:
    declared, order_column = REPAIRABLE[name]
    return queries.survey_keys(connection, schema_name, declared, order_column)


def _rebuild(market_db: MarketDatabase, name: str, keep_backup: bool) -> queries.RebuildReport:
    declared, order_column = REPAIRABLE[name]
    with market_db.write_lock(declared), market_db.begin() as connection:
        report = queries.rebuild_with_key(
            connection, market_db.schema_name, declared, order_column, utc_now().date()
        )
        if not keep_backup:
            queries.drop_backup(connection, market_db.schema_name, report.backup)
    return report


SURVEY_COLUMNS = ["table", "key", "status", "rows", "rows_to_remove", "rows_with_null_key"]
REPORT_COLUMNS = ["table", "rows_before", "rows_after", "removed", "original"]


def _survey_row(survey: queries.KeySurvey) -> dict[str, object]:
    return {
        "table": survey.table,
        "key": ", ".join(survey.key),
        "status": survey.status,
        "rows": survey.rows if survey.needs_repair else "",
        "rows_to_remove": survey.duplicates if survey.needs_repair else "",
        "rows_with_null_key": survey.null_keys if survey.needs_repair else "",
    }


def _report_row(report: queries.RebuildReport, keep_backup: bool) -> dict[str, object]:
    return {
        "table": report.table,
        "rows_before": report.rows_before,
        "rows_after": report.rows_after,
        "removed": report.removed,
        "original": report.backup if keep_backup else "dropped",
    }


def _examples(surveys: list[queries.KeySurvey]) -> dg.MetadataValue:
    rows = [
        {"table": survey.table, "key": ", ".join(str(example[name]) for name in survey.key), **example}
        for survey in surveys
        for example in survey.examples
    ]
    return markdown_table(rows, ["table", "key", "rows", "oldest", "latest"])
