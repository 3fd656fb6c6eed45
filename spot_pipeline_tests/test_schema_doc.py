"""database_schema.md documents exactly the tables, columns, types, nullability and keys in the code."""

from __future__ import annotations

import re
from pathlib import Path

from spot_pipeline.db.schema import TRADE_TIMESTAMP_COLUMNS, metadata
from spot_pipeline_dev.schema_doc import describe_table

DOCUMENT = Path(__file__).resolve().parents[1] / "database_schema.md"


def test_every_table_block_matches_the_metadata() -> None:
    text = DOCUMENT.read_text()
    for table in metadata.sorted_tables:
        assert describe_table(table) in text, (
            f"database_schema.md is out of date for market.{table.name}: "
            "paste the block printed by `python -m spot_pipeline_dev.schema_doc`"
        )


def test_document_lists_no_table_the_code_lacks() -> None:
    documented = set(re.findall(r"^## market\.(\w+)$", DOCUMENT.read_text(), flags=re.MULTILINE))
    assert documented == {table.name for table in metadata.sorted_tables}


def test_trade_timestamps_are_documented_as_datetime() -> None:
    text = DOCUMENT.read_text()
    for column in TRADE_TIMESTAMP_COLUMNS:
        assert f"| {column} | DATETIME | YES |  |" in text
