"""Frames for ``bench/stream.py``: the simulator's own world, encoded as the venue sends it.

A file of length-prefixed frames: first a ``book`` snapshot for every token (phase 1), then the
message mix of the world's steps (phase 0), one message per frame. Read back as it goes, so the
measuring process never holds the whole run in memory.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

START_S = 1_772_366_400.0  # 2026-03-01 12:00 UTC
HEADER = struct.Struct("<IB")  # frame length, 1 = snapshot phase


def generate(path: Path, markets: int, messages: int, seed: int) -> dict[str, Any]:
    """Write the snapshot dump and ``messages`` stream frames; returns the world's layout."""
    from polyfarm.markets.tiers import tier_for
    from polyfarm.settings import TierSettings
    from polyfarm.sim import wsmessages
    from polyfarm.sim.world import World, WorldParams

    world = World(WorldParams(markets=markets, seed=seed), START_S)
    layout = []
    with path.open("wb") as out:
        for market in world.markets:
            if world.open_book(market):
                for is_yes in (True, False):
                    _write(out, wsmessages.book_message(market, is_yes), 1)
                end = utc(market.end_s)
                tier = tier_for(end, False, utc(START_S), TierSettings())
                ids = (market.gamma_id, market.condition_id, market.yes_token, market.no_token)
                layout.append((*ids, tier))
        written, now = 0, START_S
        while written < messages:
            now += 1.0
            for event in world.step(now):
                for outbound in wsmessages.encode(event):
                    _write(out, outbound.payload, 0)
                    written += 1
    return {"markets": layout, "messages": written}


def _write(out: Any, payload: bytes, phase: int) -> None:
    out.write(HEADER.pack(len(payload), phase))
    out.write(payload)


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def frames(path: Path, *, skip: bool = False) -> Iterator[tuple[bytes, int]]:
    """(frame, phase) pairs read as they go; ``skip`` only walks the headers."""
    with path.open("rb", buffering=4 * 2**20) as source:
        while header := source.read(HEADER.size):
            size, phase = HEADER.unpack(header)
            if skip:
                source.seek(size, os.SEEK_CUR)
                yield b"", phase
            else:
                yield source.read(size), phase
