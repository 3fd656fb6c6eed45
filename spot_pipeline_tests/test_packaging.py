"""What ships: the wheel built from pyproject.toml holds the production package and nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_only_the_production_package(tmp_path: Path) -> None:
    build = ["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path)]
    subprocess.run([sys.executable, "-m", "pip", *build, str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("spot_pipeline-*.whl")
    top_levels = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    packages = {name for name in top_levels if not name.endswith(".dist-info")}
    assert packages == {"spot_pipeline"}
    sources = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in sources if "fake" in name or "demo" in name or "legacy_tables" in name]
