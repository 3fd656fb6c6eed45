"""A local, deterministic imitation of the CCData data-api and min-api for tests, benchmarks and demos."""

from spot_pipeline_dev.fake_ccdata.dataset import FakeDataset
from spot_pipeline_dev.fake_ccdata.records import FakeAsset, FakeExchange, FakeInstrument, FakeMarket
from spot_pipeline_dev.fake_ccdata.server import FakeCCDataServer, RecordedRequest

__all__ = [
    "FakeAsset",
    "FakeCCDataServer",
    "FakeDataset",
    "FakeExchange",
    "FakeInstrument",
    "FakeMarket",
    "RecordedRequest",
]
