"""The Dagster UI of the production deployment in a real browser (Debian's chromium through Playwright),
after the runs of production_runs.py: the global asset lineage, the candle asset's partitions and a
finished backfill run render what happened.

Screenshots go to the test's temporary folder; with SPOT_PIPELINE_UPDATE_SCREENSHOTS=1 they also
replace the ones in docs/img/ that the README shows, so a plain run never changes the checkout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from spot_pipeline_tests.deployment import DEPLOYMENT_PARTITION_DAYS, REPO_ROOT, Deployment
from spot_pipeline_tests.production_runs import CANDLE_ASSET, ProductionRuns

pytestmark = pytest.mark.mysql

CHROMIUM = Path("/usr/bin/chromium")
UPDATE_SCREENSHOTS_VARIABLE = "SPOT_PIPELINE_UPDATE_SCREENSHOTS"
DOCS_IMAGES = REPO_ROOT / "docs" / "img"
VIEWPORT = {"width": 1400, "height": 900}
RENDER_TIMEOUT_MS = 30_000
# The community dialog opens a second after the first page of an instance that never dismissed it.
FIRST_VISIT_DIALOG_TIMEOUT_MS = 10_000
SETTLE_MS = 1_500


@pytest.fixture(scope="module")
def browser(dagster_deployment: Deployment) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        # --no-sandbox: chromium refuses to run as root (CI) with its sandbox.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        dismiss_first_visit_dialog(browser, dagster_deployment.webserver_url)
        yield browser
        browser.close()


def dismiss_first_visit_dialog(browser: Browser, webserver_url: str) -> None:
    """Skip the community dialog once; the instance remembers it (setNuxSeen), for every later page."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(webserver_url)
    with contextlib.suppress(PlaywrightTimeout):  # an instance that shows no such dialog
        page.get_by_role("button", name="Skip").click(timeout=FIRST_VISIT_DIALOG_TIMEOUT_MS)
        expect(page.get_by_text("Join the Dagster community")).to_be_hidden()
    page.close()


@pytest.fixture
def page(browser: Browser, dagster_deployment: Deployment, production_runs: ProductionRuns) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, base_url=dagster_deployment.webserver_url)
    page = context.new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    yield page
    context.close()


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    page.wait_for_timeout(SETTLE_MS)
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path)
    if os.environ.get(UPDATE_SCREENSHOTS_VARIABLE) == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / path.name)


def test_the_global_asset_lineage_shows_every_group_and_their_assets(page: Page, tmp_path: Path) -> None:
    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    for group in ("reference_data", "universe", "ohlcv"):
        expect(visible_text(page, group)).to_be_visible()
    page.keyboard.press("Alt+e")  # the graph's shortcut for "Expand all groups"
    # Short names only: the graph's nodes shorten long ones (cc_ohlcv_s…_1d_raw).
    for asset in ("cc_assets", "spot_universe"):
        expect(visible_text(page, asset)).to_be_visible()
    screenshot(page, tmp_path, "asset-lineage")


def visible_text(page: Page, text: str) -> Locator:
    """The first visible element showing exactly `text` (the UI keeps hidden copies for measuring)."""
    return page.get_by_text(text, exact=True).filter(visible=True).first


def test_the_candle_partitions_page_counts_the_materialized_days_and_shows_each_days_figures(
    page: Page, production_runs: ProductionRuns, tmp_path: Path
) -> None:
    days = production_runs.candle_days()
    page.goto(f"/assets/{CANDLE_ASSET}?view=partitions")
    expect(page.get_by_text(f"Materialized ({len(days)})")).to_be_visible()
    expect(page.get_by_text(f"Missing ({DEPLOYMENT_PARTITION_DAYS - len(days)})")).to_be_visible()
    expect(page.get_by_text("Failed (0)")).to_be_visible()
    page.goto(f"/assets/{CANDLE_ASSET}?view=partitions&partition={max(days).isoformat()}")
    expect(visible_text(page, "dagster/row_count")).to_be_visible()
    expect(visible_text(page, "preview")).to_be_visible()
    screenshot(page, tmp_path, "candle-partitions")


def test_a_finished_backfill_run_page_shows_its_success_and_materializations(
    page: Page, production_runs: ProductionRuns, tmp_path: Path
) -> None:
    backfill = production_runs.first_backfill
    page.goto(f"/runs/{backfill.run_id}")
    expect(page.get_by_text(backfill.run_id[:8]).first).to_be_visible()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    expect(page.get_by_text("ASSET_MATERIALIZATION").first).to_be_visible()
    days = f"{backfill.days.first} .. {backfill.days.last} ({len(backfill.days.days())} days)"
    expect(page.get_by_text(days).first).to_be_visible()
    screenshot(page, tmp_path, "backfill-run")
