"""The steps of `adoption_preflight_job`: three surveys side by side, then the steps in order. They
read only, through an engine that creates nothing; the questions are in `survey`."""

import dagster as dg

from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.maintenance.adoption import survey
from spot_pipeline.maintenance.adoption.findings import REPORT_COLUMNS, Finding, render_report, report_rows
from spot_pipeline.metadata import markdown_table


@dg.op
def survey_candle_table(market_db: MarketDatabase) -> list[Finding]:
    """cc_ohlcv_spot_1d_raw: BIGINT trade timestamps and their invalid epochs (zeros included), keys
    and duplicate candles, candles stored before their day was over, the collation of its text."""
    with market_db.untouched_engine() as engine:
        return survey.candle_table_findings(engine, market_db.schema_name)


@dg.op
def survey_other_tables(market_db: MarketDatabase) -> list[Finding]:
    """Every other market table the pipeline reads or writes: missing, without the key its upserts
    rely on (with the rows that duplicate a key), columns or types it cannot write, its text."""
    with market_db.untouched_engine() as engine:
        return survey.table_findings(engine, market_db.schema_name)


@dg.op
def survey_server(market_db: MarketDatabase) -> list[Finding]:
    """The pipeline user's privileges on the schema, local_infile, the schema's default collation and
    the server's time zone (MySQL/MariaDB)."""
    with market_db.untouched_engine() as engine:
        return survey.server_findings(engine, market_db.schema_name)


@dg.op
def order_adoption_steps(
    context: dg.OpExecutionContext,
    candle_table: list[Finding],
    other_tables: list[Finding],
    server: list[Finding],
) -> None:
    """The findings as one report, in the order to act on them (the runbook's 'Install on an
    existing database' follows the same order)."""
    findings = [*candle_table, *other_tables, *server]
    context.log.info("Adoption preflight:\n" + render_report(findings))
    context.add_output_metadata(
        {
            "steps": markdown_table(report_rows(findings), REPORT_COLUMNS),
            "steps_to_take": sum(finding.needs_action for finding in findings),
        }
    )
