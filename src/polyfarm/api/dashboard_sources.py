"""The built dashboard ships inside the package, so running polyfarm never needs Node.js.

``dashboard/`` (React + Vite) is built into ``polyfarm/api/dashboard_build``, which is committed
and installed with the wheel. Only changing the dashboard needs Node. Beside the build lies
``SOURCES.sha256``: a digest of every input of that build (sources, lock file, configuration,
the OpenAPI document the types come from). A test recomputes it, so a source edited without a
rebuild fails the suite instead of shipping a stale page.

``python -m polyfarm.api.dashboard_sources`` records the digest (``make dashboard`` runs it
after the build).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "dashboard_build"
DIGEST_FILE = "SOURCES.sha256"
# Inputs of `npm run build` besides dashboard/src: what vite, tsc and npm read.
BUILD_INPUTS = (
    "index.html",
    "openapi.json",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
)


def checkout_dashboard_dir() -> Path:
    """``dashboard/`` of the source checkout this module runs from (absent in a wheel)."""
    return Path(__file__).resolve().parents[3] / "dashboard"


def source_files(dashboard: Path) -> Iterator[Path]:
    yield from (dashboard / name for name in BUILD_INPUTS)
    yield from sorted(p for p in (dashboard / "src").rglob("*") if p.is_file())


def source_digest(dashboard: Path) -> str:
    """SHA-256 over every input's path (relative, POSIX) and bytes, in a fixed order."""
    digest = hashlib.sha256()
    for path in source_files(dashboard):
        name = path.relative_to(dashboard).as_posix().encode()
        content = path.read_bytes()
        for part in (name, content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def recorded_digest(shipped: Path = SHIPPED_DIR) -> str | None:
    try:
        return (shipped / DIGEST_FILE).read_text().strip()
    except FileNotFoundError:
        return None


def record_digest(dashboard: Path, shipped: Path = SHIPPED_DIR) -> str:
    value = source_digest(dashboard)
    (shipped / DIGEST_FILE).write_text(value + "\n")
    return value


if __name__ == "__main__":  # pragma: no cover - run by `make dashboard`
    sys.stdout.write(record_digest(checkout_dashboard_dir()) + "\n")
