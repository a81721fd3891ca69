"""The simulator's configuration: one small immutable object, validated once."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from polyfarm.sim.clock import MAX_SPEED, bounded_number
from polyfarm.sim.mix import Mix

MAX_RATE = 1_000.0  # events per market per simulated second
MAX_IDLE_TIMEOUT_S = 3_600.0  # a venue that waits longer for a PING is not one to model


def is_loopback(host: str) -> bool:
    """True for loopback literals and ``localhost``; anything else counts as remote."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes a simulator run.

    ``mix`` picks the markets and their activity: ``uniform`` (the default: every tier equally
    populated, comparable rates everywhere, what small test worlds need) or ``venue`` (the
    venue's tier mix and heavy-tailed activity, a model; see ``venue.py``). Rates are per
    simulated second; ``trade_rate`` and ``new_markets_per_hour`` left at ``None`` take the
    mix's default. ``start_time`` is an epoch (seconds) or an aware datetime;
    ``None`` means the real current time. ``faults`` is a spec string (see ``faults.py``).
    ``v2_share`` is the share of markets listed under Protocol V2 (trading ids in
    ``positionIds``), most of them as on the venue since August 2026. A WebSocket connection
    that sends no ``PING`` for ``ws_idle_timeout_s`` real seconds is closed (0: never).
    ``clob_history_max_age_s`` ages points out of the CLOB's price history, as the Data API's
    retention tiers do on its own route.
    """

    markets: int = 200
    seed: int = 7
    speed: float = 1.0
    faults: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    start_time: float | datetime | None = None
    allow_remote: bool = False
    ws_asset_cap: int = 500
    rate_limits: bool = True
    tick_s: float = 0.05
    mix: Mix = Mix.UNIFORM
    trade_rate: float | None = None
    quote_rate: float = 0.1
    new_markets_per_hour: float | None = None
    max_events_per_step: int = 4000
    history_bug_216: bool = False
    # How far back the CLOB's /prices-history still serves points (None: the world's whole
    # past); how long it keeps them is an open question (docs/polymarket-wire.md §8).
    clob_history_max_age_s: float | None = None
    legacy_offset_max: int = 2000
    clob_page_size: int = 1000
    trade_retention: int = 2_000_000
    no_new_assets_interval_s: float = 10.0
    resolution_delay_s: tuple[float, float] = (120.0, 1800.0)
    v2_share: float = 0.8
    ws_idle_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.markets < 1:
            raise ValueError("markets must be >= 1")
        bounded_number(self.speed, "speed", MAX_SPEED)
        if bounded_number(self.tick_s, "tick_s", 60.0) == 0:
            raise ValueError("tick_s must be > 0")
        if self.ws_asset_cap < 1:
            raise ValueError("ws_asset_cap must be >= 1")
        if self.trade_rate is not None:
            bounded_number(self.trade_rate, "trade_rate", MAX_RATE)
        if self.mix not in tuple(Mix):
            raise ValueError(f"mix must be one of {', '.join(Mix)}, got {self.mix!r}")
        object.__setattr__(self, "mix", Mix(self.mix))  # "venue" is taken for Mix.VENUE
        bounded_number(self.quote_rate, "quote_rate", MAX_RATE)
        bounded_number(self.v2_share, "v2_share", 1.0)
        bounded_number(self.ws_idle_timeout_s, "ws_idle_timeout_s", MAX_IDLE_TIMEOUT_S)
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(f"refusing non-loopback host {self.host!r} without allow_remote")

    def start_epoch(self, now: float) -> float:
        """The simulated clock's starting epoch; ``now`` is used when none was configured."""
        if self.start_time is None:
            return now
        if isinstance(self.start_time, datetime):
            if self.start_time.tzinfo is None:
                raise ValueError("start_time datetime must be timezone-aware")
            return self.start_time.timestamp()
        return float(self.start_time)

    def trade_rate_per_s(self) -> float:
        """Trades per open market per simulated second (mean; default: the mix's)."""
        return self.mix.trade_rate if self.trade_rate is None else self.trade_rate

    def spawn_rate_per_s(self) -> float:
        """New markets per simulated second (default: the mix's; uniform: 2 % of the initial
        count per hour; venue: the rate that keeps its tier mix steady, ≈ 2.2 % per hour)."""
        per_hour = self.new_markets_per_hour
        if per_hour is None:
            per_hour = self.mix.listing_rate_per_hour(self.markets)
        return per_hour / 3600.0
