"""The command line loads a command's modules only when that command runs."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from polyfarm.cli import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_listed_command_loads_under_its_own_name(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_an_unknown_command_is_refused() -> None:
    assert cli.get_command(click.Context(cli), "no-such-command") is None


def test_export_does_not_import_the_daemon_the_api_or_the_simulator() -> None:
    probe = (
        "import sys\n"
        "from polyfarm.cli import main\n"
        "try:\n"
        "    main(['export', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['fastapi', 'polyfarm.daemon', 'polyfarm.sim', 'polyfarm.api', 'aiohttp']\n"
        "print('heavy:' + ','.join(name for name in heavy if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "heavy:"
