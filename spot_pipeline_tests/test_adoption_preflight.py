"""The adoption preflight on its own: a database the pipeline made needs nothing; a user without the
pipeline's privileges is told the GRANT; a server imitating MySQL 8 is reported for its local_infile
and its time zone. (The legacy database as a whole: test_adoption.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from spot_pipeline.db.dialect import is_mysql
from spot_pipeline.db.engine import create_market_engine
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.maintenance.adoption.findings import Finding, Stage, render_report
from spot_pipeline.maintenance.adoption.survey import adoption_findings, server_findings
from spot_pipeline_tests.conftest import server_name


def findings_of(market_db: MarketDatabase) -> list[Finding]:
    with market_db.untouched_engine() as engine:
        return adoption_findings(engine, market_db.schema_name)


def test_a_database_the_pipeline_made_needs_nothing(market_db: MarketDatabase) -> None:
    findings = findings_of(market_db)
    assert not [finding for finding in findings if finding.needs_action], render_report(findings)
    assert render_report(findings).endswith("Nothing to do: adopt as it is.")


@pytest.fixture
def select_only_user(market_db: MarketDatabase) -> Iterator[sa.Engine]:
    """An engine of a user who may only read the schema."""
    if not is_mysql(market_db.engine):
        pytest.skip("SQLite has no users")
    user = f"reader_{uuid.uuid4().hex[:8]}"
    with market_db.begin() as connection:
        connection.exec_driver_sql(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'reader-password'")
        connection.exec_driver_sql(f"GRANT SELECT ON `{market_db.schema_name}`.* TO '{user}'@'%'")
    url = sa.make_url(market_db.url).set(
        username=user, password="reader-password", database=market_db.schema_name
    )
    engine = create_market_engine(url.render_as_string(hide_password=False), market_db.schema_name)
    yield engine
    engine.dispose()
    with market_db.begin() as connection:
        connection.exec_driver_sql(f"DROP USER '{user}'@'%'")


def test_a_user_without_the_pipelines_privileges_is_given_the_grant(
    market_db: MarketDatabase, select_only_user: sa.Engine
) -> None:
    (privileges,) = [
        finding
        for finding in server_findings(select_only_user, market_db.schema_name)
        if finding.stage is Stage.PRIVILEGES and "lacks" in finding.found
    ]
    assert (
        "lacks INSERT, UPDATE, DELETE, CREATE, CREATE TEMPORARY TABLES, ALTER, DROP, INDEX"
        in privileges.found
    )
    assert privileges.step.startswith(
        "GRANT INSERT, UPDATE, DELETE, CREATE, CREATE TEMPORARY TABLES, ALTER, DROP, INDEX ON "
        f"`{market_db.schema_name}`.* TO 'reader_"
    )


def test_a_server_with_mysql_8s_defaults_is_reported_for_local_infile_and_its_time_zone(
    market_db: MarketDatabase,
) -> None:
    if server_name(market_db) != "MariaDB (MySQL 8 defaults)":
        pytest.skip("the server imitating MySQL 8's defaults only")
    found = {finding.found: finding for finding in findings_of(market_db)}
    local_infile = found[
        "local_infile is OFF (MySQL 8's default): candles are written by multi-row statements, slower"
    ]
    assert local_infile.step.startswith("optional") and not local_infile.needs_action
    (time_zone,) = [finding for finding in found.values() if finding.stage is Stage.TIME_ZONE]
    assert time_zone.found == "time zone +05:00, +5 h from UTC"
    assert "pins its sessions to UTC" in time_zone.step and not time_zone.needs_action
