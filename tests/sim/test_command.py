"""The ``sim`` command: four eval-able lines on stdout, clean exit on SIGTERM, loopback only."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
from click.testing import CliRunner

from polyfarm.sim.command import sim_command

from .support import REPO_ROOT


async def test_module_entry_point_prints_urls_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyfarm.sim", "--markets", "100", "--seed", "3", "--speed", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
            for _ in range(4)
        ]
        names = [line.split("=", 1)[0] for line in lines]
        assert names == [
            "POLYFARM_GAMMA_URL",
            "POLYFARM_CLOB_URL",
            "POLYFARM_DATA_URL",
            "POLYFARM_WS_URL",
        ]
        urls = dict(line.split("=", 1) for line in lines)
        async with (
            aiohttp.ClientSession() as http,
            http.get(urls["POLYFARM_CLOB_URL"] + "/") as response,
        ):
            assert await response.json() == "OK"
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, stderr.decode()[-2000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_refuses_remote_hosts_and_bad_fault_specs() -> None:
    runner = CliRunner()
    result = runner.invoke(sim_command, ["--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "--allow-remote" in result.output
    result = runner.invoke(sim_command, ["--faults", "teleport=1"])
    assert result.exit_code != 0
    assert "unknown fault kind" in result.output
    assert sim_command.name == "sim"
