"""Running a ``bench/`` script as its users do: a separate process, its JSON last line read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_script(name: str, *arguments: str, timeout_s: float) -> tuple[dict[str, Any], str]:
    """``bench/<name>`` run with ``arguments`` (``--json`` among them): its JSON line, parsed,
    and its whole output; a failed run fails the test with the end of its stderr."""
    done = subprocess.run(
        [sys.executable, str(BENCH / name), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout
