"""The ``sim`` command: four eval-able lines on stdout, clean exit on SIGTERM, loopback only."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
from click.testing import CliRunner

from polyfarm.sim.command import sim_command

from .support import REPO_ROOT, sim_process, stop_with_sigterm

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


async def test_module_entry_point_prints_urls_and_stops_on_sigterm() -> None:
    argv = ("--markets", "100", "--seed", "3", "--speed", "5")
    async with sim_process(*argv) as (process, urls):
        assert list(urls) == [
            "POLYFARM_GAMMA_URL",
            "POLYFARM_CLOB_URL",
            "POLYFARM_DATA_URL",
            "POLYFARM_WS_URL",
        ]
        async with (
            aiohttp.ClientSession() as http,
            http.get(urls["POLYFARM_CLOB_URL"] + "/") as response,
        ):
            assert await response.json() == "OK"
        await stop_with_sigterm(process)


def test_refuses_remote_hosts_and_bad_fault_specs() -> None:
    runner = CliRunner()
    result = runner.invoke(sim_command, ["--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "--allow-remote" in result.output
    result = runner.invoke(sim_command, ["--faults", "teleport=1"])
    assert result.exit_code != 0
    assert "unknown fault kind" in result.output
    assert sim_command.name == "sim"


def test_a_port_in_use_is_one_line_from_either_entry_point() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for entry in ([sys.executable, "-m", "polyfarm.sim"], [POLYFARM, "sim"]):
            result = subprocess.run(
                [*entry, "--port", port, "--markets", "5"],
                capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False,
            )  # fmt: skip
            assert result.returncode == 1, result.stderr
            assert "Traceback" not in result.stderr
            assert (
                result.stderr.strip()
                .splitlines()[-1]
                .startswith(f"Error: the simulator cannot listen on 127.0.0.1:{port}")
            )
