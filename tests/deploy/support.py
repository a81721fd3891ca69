"""Where the deployment files are, and the development tools that check them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str, why: str) -> str:
    """A command-line tool: from this environment (the dev dependency group) or ``PATH``;
    a missing one skips the test with what to install."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"SKIPPED: {name} is not installed ({why})")
    return found
