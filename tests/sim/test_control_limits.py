"""Every control input of the simulator is validated: finite, bounded, of the right type; and a
simulator driven as hard as its limits allow still answers and still stops on SIGTERM."""

from __future__ import annotations

import asyncio
import math
import resource
import sys
import time
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfarm.sim import Simulator
from polyfarm.sim.clock import MAX_ADVANCE_S, MAX_SPEED, bounded_number
from polyfarm.sim.faults import FaultSpec, FaultSpecError

from .support import REPO_ROOT, sim_process, stop_with_sigterm

HOSTILE_NUMBERS: list[Any] = [1e308, -1, -1e-9, True, False, "1", None, [1], {"x": 1}, 1e20]


async def post_json(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=repr)
async def test_clock_controls_refuse_what_is_not_a_bounded_number(
    sim: Simulator, http: aiohttp.ClientSession, value: Any
) -> None:
    import orjson

    before = sim.clock.snapshot()
    for route, name in (("speed", "speed"), ("advance", "seconds")):
        status, body = await post_json(
            http, f"{sim.base_url}/_sim/clock/{route}", orjson.dumps({name: value})
        )
        assert status == 400, (route, value, body)
        assert name in body["error"]
    assert sim.clock.speed == before["speed"]
    # The world is untouched and answers at once.
    started = time.monotonic()
    async with http.get(f"{sim.base_url}/_sim/stats") as response:
        assert response.status == 200
    assert time.monotonic() - started < 2


async def test_numbers_json_cannot_hold_are_refused_too(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    for raw in (b'{"speed": 1e400}', b'{"speed": NaN}', b'{"speed": Infinity}', b"[1]", b"1"):
        status, _ = await post_json(http, f"{sim.base_url}/_sim/clock/speed", raw)
        assert status == 400, raw


async def test_limits_themselves_are_accepted(sim: Simulator, http: aiohttp.ClientSession) -> None:
    status, clock = await post_json(
        http, f"{sim.base_url}/_sim/clock/speed", f'{{"speed": {MAX_SPEED}}}'.encode()
    )
    assert status == 200
    assert clock["speed"] == MAX_SPEED


@pytest.mark.parametrize(
    "spec", ["ws_drop=nan", "ws_drop=inf", "http_429=1.5", "latency_ms=inf", "timeout_s=1e9"]
)
async def test_fault_specs_refuse_nan_and_out_of_range_values(
    sim: Simulator, http: aiohttp.ClientSession, spec: str
) -> None:
    async with http.post(f"{sim.base_url}/_sim/faults", data=spec.encode()) as response:
        assert response.status == 400, spec
    with pytest.raises(FaultSpecError):
        FaultSpec.parse(spec)


@pytest.mark.parametrize(
    "argv",
    [["--speed", "nan"], ["--speed", "inf"], ["--speed", "-1"], ["--speed", "1e308"],
     ["--faults", "ws_drop=nan"], ["--faults", "latency_ms=inf"]],
    ids=" ".join,
)  # fmt: skip
async def test_the_command_refuses_nan_and_unbounded_arguments(argv: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyfarm.sim", "--markets", "5", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2, stderr.decode()[-2000:]
    assert "Traceback" not in stderr.decode()
    assert "Invalid value" in stderr.decode()


def _memory_cap() -> None:
    # Run against a simulator without these limits, the hostile speed below grows memory
    # without end; the cap makes that a quick failure instead of a machine-wide one.
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


async def test_after_hostile_clock_inputs_it_still_answers_and_stops_on_sigterm() -> None:
    argv = ("--markets", "500", "--seed", "4")
    async with sim_process(*argv, preexec_fn=_memory_cap) as (process, urls):
        base = urls["POLYFARM_GAMMA_URL"].removesuffix("/gamma")
        steps = [
            ("speed", {"speed": 1e308}, 400),
            ("advance", {"seconds": 1e308}, 400),
            ("speed", {"speed": MAX_SPEED}, 200),
            ("advance", {"seconds": MAX_ADVANCE_S}, 200),
        ]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            for route, body, expected in steps:
                async with http.post(f"{base}/_sim/clock/{route}", json=body) as response:
                    assert response.status == expected, (body, await response.text())
            for _ in range(3):
                started = time.monotonic()
                async with http.get(f"{base}/_sim/stats") as response:
                    assert response.status == 200
                assert time.monotonic() - started < 5
                await asyncio.sleep(1)
        await stop_with_sigterm(process)


# -- properties -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children)
    ),
    max_leaves=5,
)


@settings(max_examples=500, deadline=None)
@given(value=json_values, high=st.floats(0, 1e9))
def test_bounded_number_returns_a_finite_number_in_range_or_refuses(
    value: Any, high: float
) -> None:
    try:
        result = bounded_number(value, "x", high)
    except ValueError as exc:
        refusal = str(exc)
        assert refusal.startswith("x must be a number from 0 to")
        assert len(refusal) < 200, "the offending value is shown shortened"
        return
    assert not isinstance(value, bool)
    assert isinstance(result, float)
    assert math.isfinite(result)
    assert 0 <= result <= high
    assert result == value


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=60) | st.lists(
    st.tuples(st.sampled_from(["ws_drop", "http_429", "latency_ms", "timeout_s", "rate_limits",
                                "gamma:http_5xx", "ws:ws_stall"]),
              st.sampled_from(["nan", "inf", "-inf", "1e308", "-0", "0.5", "1", "2", "1e3"])),
    max_size=4).map(lambda pairs: ",".join(f"{k}={v}" for k, v in pairs)))  # fmt: skip
def test_any_fault_spec_parses_to_finite_values_in_range_or_is_refused(text: str) -> None:
    try:
        spec = FaultSpec.parse(text)
    except FaultSpecError:
        return
    for (_, kind), value in spec.entries.items():
        assert math.isfinite(value)
        assert value >= 0
        if kind not in ("latency_ms", "timeout_s", "retry_after_s", "rate_limits"):
            assert value <= 1
