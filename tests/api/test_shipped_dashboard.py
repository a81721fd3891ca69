"""The dashboard ships built inside the package: it must be the build of the sources beside it."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest

from polyfarm.api.dashboard_sources import (
    DIGEST_FILE,
    SHIPPED_DIR,
    checkout_dashboard_dir,
    recorded_digest,
    source_digest,
)
from polyfarm.api.static import default_dashboard_dir

DASHBOARD = checkout_dashboard_dir()


def test_the_api_serves_the_shipped_build_by_default() -> None:
    assert default_dashboard_dir() == SHIPPED_DIR
    assert (SHIPPED_DIR / "index.html").is_file()
    assert any((SHIPPED_DIR / "assets").glob("*.js"))


def test_shipped_build_was_made_from_the_current_sources() -> None:
    assert recorded_digest() == source_digest(DASHBOARD), (
        "the dashboard's sources changed since the shipped build: run `make dashboard` "
        "(needs Node.js 20+) and commit src/polyfarm/api/dashboard_build"
    )


def test_the_digest_covers_every_source(tmp_path: Path) -> None:
    copy = tmp_path / "dashboard"
    shutil.copytree(DASHBOARD, copy, ignore=shutil.ignore_patterns("node_modules"))
    before = source_digest(copy)
    page = copy / "src" / "pages" / "Tasks.tsx"
    page.write_text(page.read_text() + "\n")
    assert source_digest(copy) != before
    (copy / "src" / "pages" / "Tasks.tsx").rename(copy / "src" / "pages" / "Jobs.tsx")
    assert source_digest(copy) != before


def _node_modules() -> Path:
    modules = DASHBOARD / "node_modules"
    if not (modules / ".package-lock.json").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=DASHBOARD, check=True, timeout=300
        )
    return modules


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_shipped_build_is_byte_for_byte_what_the_sources_build(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm (Node.js 20+) is missing: the shipped build cannot be rebuilt here")
    vite = _node_modules() / ".bin" / "vite"
    out = tmp_path / "build"
    subprocess.run(
        [str(vite), "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "error"],
        cwd=DASHBOARD,
        check=True,
        timeout=300,
    )
    shipped = {p.relative_to(SHIPPED_DIR) for p in SHIPPED_DIR.rglob("*") if p.is_file()}
    built = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert shipped - {Path(DIGEST_FILE)} == built
    _, mismatch, errors = filecmp.cmpfiles(SHIPPED_DIR, out, sorted(map(str, built)), shallow=False)
    assert not errors
    assert not mismatch, f"the rebuild differs from the shipped build: {mismatch}"
