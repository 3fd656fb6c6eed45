"""What ships: the wheel built from pyproject.toml holds the production package and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_only_the_production_package(tmp_path: Path) -> None:
    # Built from a copy of the project's files, so that the build leaves nothing behind in the checkout.
    source = tmp_path / "source"
    for folder in ("spot_pipeline", "spot_pipeline_dev", "spot_pipeline_tests", "benchmarks"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = ["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path)]
    subprocess.run([sys.executable, "-m", "pip", *build, str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("spot_pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"spot_pipeline"}
    assert not [name for name in names if "fake" in name or "demo" in name or "legacy_tables" in name]
