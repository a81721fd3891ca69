"""The ``sim`` command: four eval-able lines on stdout, clean exit on SIGTERM, loopback only."""

from __future__ import annotations

import aiohttp
from click.testing import CliRunner

from polyfarm.sim.command import sim_command

from .support import sim_process, stop_with_sigterm


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
