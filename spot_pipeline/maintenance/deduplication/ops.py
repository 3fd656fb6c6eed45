"""The steps of `deduplicate_ohlcv_job`: count, delete, verify, enforce the natural key."""

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import Field

from spot_pipeline.db.locks import OHLCV_WRITE_POOL
from spot_pipeline.db.resource import MarketDatabase
from spot_pipeline.db.schema import NATURAL_UNIQUE_KEY, cc_ohlcv_spot_1d_raw
from spot_pipeline.maintenance.deduplication import natural_key
from spot_pipeline.maintenance.deduplication.table_deduplication import DEFAULT_BATCH_DAYS, BatchResult
from spot_pipeline.metadata import markdown_table

EXCHANGES_SHOWN = 25


class DeduplicationConfig(dg.Config):
    dry_run: bool = Field(
        default=False,
        description="Only count the duplicates per exchange and report what would be deleted: nothing is "
        "deleted and no key is added.",
    )
    batch_days: int | None = Field(
        default=None,
        ge=1,
        description=f"Days of candles deduplicated per transaction. Default: {DEFAULT_BATCH_DAYS} when an "
        "index starts with `datetime`; otherwise the whole table in one batch, since each batch would "
        "read all of it anyway (legacy tables with no key).",
    )
    add_unique_key: bool = Field(
        default=False,
        description="Once no duplicate remains, add UNIQUE uq_cc_ohlcv_spot_1d_raw_unmapped (datetime, "
        "exchange, symbol_unmapped), and PRIMARY KEY (datetime, exchange, symbol) to a table that has no "
        "primary key, when the data allows. False only reports missing keys.",
    )


@dataclass(frozen=True)
class DeduplicationPlan:
    """The settings the job runs with, handed from step to step."""

    dry_run: bool
    batch_days: int | None
    add_unique_key: bool


@dg.op(
    out={
        "plan": dg.Out(
            DeduplicationPlan,
            is_required=False,
            description="Emitted when the table may hold duplicates, or lacks a key the run could add.",
        ),
        "key_enforced": dg.Out(
            dg.Nothing,
            is_required=False,
            description="Emitted instead when the database's unique key on the natural key rules "
            "duplicates out and no key is to be added: the other steps are skipped.",
        ),
    }
)
def count_duplicate_candles(
    context: dg.OpExecutionContext, config: DeduplicationConfig, market_db: MarketDatabase
) -> Iterator[dg.Output]:
    """Report which keys market.cc_ohlcv_spot_1d_raw has, then count its rows and the duplicates of
    their natural key (datetime, exchange, symbol_unmapped) per exchange. Reads only. When the unique
    key on the natural key exists (and no other key is to be added), there can be no duplicate: the
    table is not read and the other steps are skipped.
    """
    with market_db.connect() as connection:
        keys = natural_key.ohlcv_key_statuses(connection, market_db.schema_name)
        if _nothing_to_do(keys, config.add_unique_key):
            context.log.info(f"{NATURAL_UNIQUE_KEY} rules duplicates out: nothing to count or delete.")
            _log_key_changes(context, keys)
            yield dg.Output(None, "key_enforced", metadata={"duplicates": 0, **_key_metadata(keys)})
            return
        found = natural_key.count_ohlcv_duplicates(connection, market_db.schema_name)
    context.log.info(f"{found.duplicates:,} duplicate rows among {found.examined:,}.")
    metadata = {
        "dagster/row_count": found.examined,
        "duplicates": found.duplicates,
        "duplicates_per_exchange": _per_exchange(found.by_group, "duplicates"),
        **_key_metadata(keys),
    }
    plan = DeduplicationPlan(config.dry_run, config.batch_days, config.add_unique_key)
    yield dg.Output(plan, "plan", metadata=metadata)


@dg.op(pool=OHLCV_WRITE_POOL)
def delete_duplicate_candles(
    context: dg.OpExecutionContext, plan: DeduplicationPlan, market_db: MarketDatabase
) -> DeduplicationPlan:
    """Keep, of every natural key, the row with the latest collected_at and delete the others: one
    transaction per `batch_days` window, under the table's write lock. A dry run counts only.
    """

    def report_batch(batch: BatchResult) -> None:
        if batch.duplicates:
            verb = "would delete" if plan.dry_run else "deleted"
            context.log.info(f"{batch.start} to {batch.end}: {verb} {batch.duplicates:,} duplicate rows.")

    lock = nullcontext() if plan.dry_run else market_db.write_lock(cc_ohlcv_spot_1d_raw)
    with lock:
        result = natural_key.deduplicate_ohlcv(
            market_db.engine,
            market_db.schema_name,
            batch_days=plan.batch_days,
            dry_run=plan.dry_run,
            on_batch=report_batch,
        )
    if result.batches > 1 and not result.range_reads:
        context.log.warning(
            f"No index starts with `datetime`, so each of the {result.batches} batches read the whole table: "
            "on this table a larger batch_days (366 or more) is much faster."
        )
    label = "would_delete" if plan.dry_run else "deleted"
    context.add_output_metadata(
        {
            "dry_run": plan.dry_run,
            "examined": result.examined,
            "duplicates": result.duplicates,
            "deleted": result.deleted,
            "batches": result.batches,
            "batch_days": plan.batch_days or "automatic",
            "batches_read_whole_table": not result.range_reads,
            f"{label}_per_exchange": _per_exchange(result.by_group, label),
        }
    )
    return plan


@dg.op
def verify_no_duplicate_candles(
    context: dg.OpExecutionContext, plan: DeduplicationPlan, market_db: MarketDatabase
) -> DeduplicationPlan:
    """Count the duplicates again. After a real run none may remain: the step fails otherwise. After a
    dry run the count is reported as it is (nothing was deleted).
    """
    with market_db.connect() as connection:
        remaining = natural_key.count_ohlcv_duplicates(connection, market_db.schema_name)
        keys = natural_key.ohlcv_key_statuses(connection, market_db.schema_name)
    metadata = {
        "dagster/row_count": remaining.examined,
        "remaining_duplicates": remaining.duplicates,
        "remaining_per_exchange": _per_exchange(remaining.by_group, "duplicates"),
        **_key_metadata(keys),
    }
    if remaining.duplicates and not plan.dry_run:
        raise dg.Failure(
            description=f"{remaining.duplicates:,} duplicate rows remain: a writer without the write lock "
            "stored them during the run, which only a unique key prevents. Run the job again, with "
            "add_unique_key: true.",
            metadata=metadata,
        )
    context.add_output_metadata(metadata)
    return plan


@dg.op(pool=OHLCV_WRITE_POOL)
def enforce_natural_key(
    context: dg.OpExecutionContext, plan: DeduplicationPlan, market_db: MarketDatabase
) -> None:
    """With add_unique_key (and not a dry run), add the keys that make the database enforce one row
    per candle, when the data allows; otherwise only report them. A missing key is logged with the
    reason it is missing.
    """
    if plan.add_unique_key and not plan.dry_run:
        with market_db.write_lock(cc_ohlcv_spot_1d_raw):
            keys = natural_key.add_ohlcv_keys(market_db.engine, market_db.schema_name)
    else:
        with market_db.connect() as connection:
            keys = natural_key.ohlcv_key_statuses(connection, market_db.schema_name)
    _log_key_changes(context, keys)
    context.add_output_metadata(_key_metadata(keys))


def _log_key_changes(context: dg.OpExecutionContext, keys: list[natural_key.KeyStatus]) -> None:
    """Keys added are logged as news, keys still missing as warnings with their reason."""
    for key in keys:
        if key.added:
            context.log.info(key.describe())
        elif not key.present:
            context.log.warning(key.describe())


def _nothing_to_do(keys: list[natural_key.KeyStatus], add_unique_key: bool) -> bool:
    """The unique natural key makes duplicates impossible; the run has work only if it may add a key."""
    by_name = {key.name: key for key in keys}
    missing = [key for key in keys if not key.present]
    return by_name[NATURAL_UNIQUE_KEY].present and not (add_unique_key and missing)


def _per_exchange(counts: dict[str, int], label: str) -> dg.MetadataValue:
    rows = [{"exchange": exchange, label: count} for exchange, count in counts.items()]
    return markdown_table(rows[:EXCHANGES_SHOWN], ["exchange", label])


def _key_metadata(keys: list[natural_key.KeyStatus]) -> dict[str, Any]:
    by_name = {key.name: key for key in keys}
    return {
        "natural_unique_key_present": by_name[NATURAL_UNIQUE_KEY].present,
        "keys": markdown_table(
            [{"key": key.name, "columns": ", ".join(key.columns), "status": key.state} for key in keys],
            ["key", "columns", "status"],
        ),
    }
