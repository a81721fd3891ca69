"""The naive recorder ``bench/stream.py`` measures polyfarm against.

What a hand-written client usually does: ``json.loads`` every frame, keep each book as a dict
of ``Decimal`` price → ``Decimal`` size per side, and store trades and captured deltas with
``executemany`` INSERTs every 500 rows into the tables that hold them (migration 0011: by token
sid, which each INSERT looks up in ``token_keys``, filled once at the start; prices and sizes
in micro-units, encoded by the server). It keeps no rolling windows, checks no hash and keys a
trade by the digest of its raw JSON, so it does strictly less work than the real path.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

BATCH = 500
TRADE_SQL = (
    "INSERT INTO trade_fills (ts, token_sid, trade_key, price, size, side, source, "
    "exchange_ms, received_at) VALUES ($1, (SELECT token_sid FROM token_keys "
    "WHERE token_id = $2 AND market_id = $3), $4, to_micros($5), to_micros($6), "
    "side_code($7), source_code('ws'), $8, $9) ON CONFLICT DO NOTHING"
)
DELTA_SQL = (
    "INSERT INTO book_changes (ts, token_sid, seq, side, price, size, received_at) "
    "VALUES ($1, (SELECT token_sid FROM token_keys WHERE token_id = $2 AND market_id = $3), "
    "$4, side_code($5), to_micros($6), to_micros($7), $8) ON CONFLICT DO NOTHING"
)
REGISTER_SQL = (
    "INSERT INTO token_keys (token_id, market_id) SELECT * FROM unnest($1::text[], $2::text[]) "
    "ON CONFLICT DO NOTHING"
)


class NaiveRecorder:
    def __init__(self, conn: asyncpg.Connection, layout: list[list[Any]], capture_all: bool):
        self.conn = conn
        self.market_of = {t: str(m[0]) for m in layout for t in (m[2], m[3])}
        tiers = set(range(5)) if capture_all else {3, 4}
        self.capture = {t for m in layout if m[4] in tiers for t in (m[2], m[3])}
        self.books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
        self.trades: list[tuple[Any, ...]] = []
        self.deltas: list[tuple[Any, ...]] = []
        self.stamps: list[float] = []
        self.latencies: list[float] = []
        self.seq = 0

    async def register(self) -> None:
        """Every token of the layout in the key registry, before the clock starts."""
        tokens = sorted(self.market_of)
        await self.conn.execute(REGISTER_SQL, tokens, [self.market_of[t] for t in tokens])

    async def handle(self, frame: bytes, stamp: float) -> int:
        data = json.loads(frame)
        events = data if isinstance(data, list) else [data]
        for event in events:
            kind = event.get("event_type")
            if kind == "book":
                self._book(event)
            elif kind == "price_change":
                self._price_change(event, stamp)
            elif kind == "last_trade_price":
                self._trade(event, stamp, frame)
        if len(self.trades) + len(self.deltas) >= BATCH:
            await self.flush()
        return len(events)

    def _book(self, event: dict[str, Any]) -> None:
        self.books[event["asset_id"]] = {
            side: {Decimal(level["price"]): Decimal(level["size"]) for level in event[side]}
            for side in ("bids", "asks")
        }

    def _price_change(self, event: dict[str, Any], stamp: float) -> None:
        ts = datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC)
        for item in event["price_changes"]:
            book = self.books.get(item["asset_id"])
            if book is None:
                continue
            side = book["bids" if item["side"] == "BUY" else "asks"]
            price, size = Decimal(item["price"]), Decimal(item["size"])
            if size == 0:
                side.pop(price, None)
            else:
                side[price] = size
            if item["asset_id"] in self.capture:
                self.seq += 1
                self.deltas.append((ts, item["asset_id"], self.market_of[item["asset_id"]],
                                    self.seq, item["side"], float(price), float(size),
                                    datetime.now(UTC)))  # fmt: skip
                self.stamps.append(stamp)

    def _trade(self, event: dict[str, Any], stamp: float, raw: bytes) -> None:
        ms = int(event["timestamp"])
        self.trades.append((
            datetime.fromtimestamp(ms // 1000, UTC), event["asset_id"],
            self.market_of[event["asset_id"]], hashlib.md5(raw, usedforsecurity=False).digest(),
            float(event["price"]), float(event["size"]), event["side"], ms, datetime.now(UTC),
        ))  # fmt: skip
        self.stamps.append(stamp)

    async def flush(self) -> None:
        import time

        async with self.conn.transaction():
            if self.trades:
                await self.conn.executemany(TRADE_SQL, self.trades)
            if self.deltas:
                await self.conn.executemany(DELTA_SQL, self.deltas)
        done = time.perf_counter()
        self.latencies.extend(done - stamp for stamp in self.stamps)
        self.trades, self.deltas, self.stamps = [], [], []

    def clear(self) -> None:
        self.latencies.clear()

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0
