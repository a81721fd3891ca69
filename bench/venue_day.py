"""A simulated venue day for the storage benchmarks: what the farm stores for each token.

Not the simulator (no HTTP, no WebSocket): a seeded model of the venue's books and trades, with
the farm's own row code on top, so that the stored values have production's shape, not a
random number generator's:

* every token has an order book, prices on its tick (0.01, or 0.001 for a fifth of them) and
  sizes in shares (whole, two decimals or six, as orders are), moved by book deltas: orders
  added and cancelled near the touch, levels emptied, now and then a level inside the spread.
  The midpoint wanders because the book does;
* trades take liquidity at the touch, in transactions of one to four fills that share a
  transaction hash, each fill also a book delta;
* activity is heavy-tailed as in the simulator's venue mix (``polyfarm.sim.venue``): about
  45 % of the tokens dormant, the rest lognormal with a wide spread, scaled so that book deltas
  and trades come at the venue's ratios to price snapshots (2.8 and 0.28);
* once a minute per token, as the collectors do: a price snapshot (always), an order-book
  snapshot (``polyfarm.markets.snapshots``' columns) and a feature row
  (``polyfarm.stream.features`` on the live state and the last hour's fills), both left out
  when equal to the token's last one written (``polyfarm.markets.unchanged``, 6-hour
  keyframes), as the stream's cadence writer does;
* Gamma's numbers (volumes, liquidity, price changes) change every 5 minutes, its metadata
  refresh.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import orjson

from polyfarm.markets.book_stats import BookStats, book_stats
from polyfarm.markets.snapshots import book_digest
from polyfarm.markets.tiers import tier_for
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.markets.unchanged import LastWritten
from polyfarm.polymarket.domain import MarketInfo
from polyfarm.settings import OrderBookSettings, TierSettings, UnchangedSettings, WhaleSettings
from polyfarm.store.rows import (
    BookDeltaRow,
    FeatureRow,
    OrderBookSnapshotRow,
    PriceSnapshotRow,
    TradeRow,
    delta_seq,
    trade_key,
)
from polyfarm.stream.features import FeatureInputs, feature_digest, feature_values
from polyfarm.stream.rolling import TokenActivity, TradeTick

START = datetime(2026, 3, 2, tzinfo=UTC)
MICRO = 1_000_000
DELTAS_PER_SNAPSHOT = 2.8
TRADES_PER_SNAPSHOT = 0.28
FILLS_PER_TRANSACTION = (0.55, 0.25, 0.12, 0.08)  # one to four fills
MEAN_FILLS = sum((n + 1) * p for n, p in enumerate(FILLS_PER_TRANSACTION))
TRANSACTIONS_PER_MINUTE = TRADES_PER_SNAPSHOT / MEAN_FILLS
QUOTES_PER_MINUTE = DELTAS_PER_SNAPSHOT - TRADES_PER_SNAPSHOT  # every fill moves a level too
DORMANT_SHARE = 0.45
DORMANT = (0.003, 1.0)  # lognormal (median, sigma), as polyfarm.sim.venue
ACTIVE = (0.5, 1.6)
GAMMA_REFRESH_MIN = 5
TIER_HOURS: tuple[tuple[float, float, float], ...] = (
    *((0.80, 48.0, 24 * 365.0), (0.08, 12.0, 48.0), (0.05, 4.0, 12.0)),
    *((0.04, 1.0, 4.0), (0.03, 0.05, 1.0)),
)
ORDER_BOOK = OrderBookSettings()
UNCHANGED = UnchangedSettings()
WHALES = WhaleSettings()
TIERS = TierSettings()


def poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def order_size(rng: random.Random) -> int:
    """One order's shares in micro-units: whole, two decimals or six (a USDC amount's fill)."""
    shares = max(5.0, rng.lognormvariate(math.log(120.0), 1.4))
    kind = rng.random()
    rounded = round(shares) if kind < 0.5 else round(shares, 2) if kind < 0.8 else shares
    return round(rounded * MICRO)


def fill_count(rng: random.Random) -> int:
    draw = rng.random()
    for count, share in enumerate(FILLS_PER_TRANSACTION, start=1):
        if draw < share:
            return count
        draw -= share
    return len(FILLS_PER_TRANSACTION)


def activity_level(rng: random.Random) -> float:
    median, sigma = DORMANT if rng.random() < DORMANT_SHARE else ACTIVE
    return rng.lognormvariate(math.log(median), sigma)


def hex_text(rng: random.Random, nbytes: int) -> str:
    return f"{rng.getrandbits(8 * nbytes):0{2 * nbytes}x}"


def _decimal(value: float, places: int) -> Decimal:
    return Decimal(str(round(value, places)))


@dataclass
class SimMarket:
    """Gamma's view of a market, shared by its two tokens; refreshed every 5 minutes."""

    info: MarketInfo
    tracked: TrackedMarket
    traded: float = 0.0  # notional since the last refresh
    opening_mid: float | None = None  # Gamma's one-day change, from the day's first midpoint

    def refresh(self, now: datetime, mid: float | None, liquidity: float) -> None:
        info = self.info
        if self.opening_mid is None:
            self.opening_mid = mid
        change = None
        if mid is not None and self.opening_mid is not None:
            change = Decimal(str(round(mid - self.opening_mid, 4)))
        self.info = msgspec.structs.replace(
            info,
            volume=_decimal(float(info.volume or 0) + self.traded, 6),
            volume_24hr=_decimal(float(info.volume_24hr or 0) * 0.997 + self.traded, 6),
            volume_1wk=_decimal(float(info.volume_1wk or 0) * 0.9995 + self.traded, 6),
            liquidity=_decimal(liquidity, 4),
            one_day_price_change=change,
        )
        self.traded = 0.0
        tier = tier_for(self.info.end_date, False, now, TIERS)
        self.tracked = TrackedMarket(info=self.info, closed=False, tier=tier, book_seed=None)


@dataclass
class SimToken:
    token_id: str
    market: SimMarket
    tick: int  # micro-units
    level: float  # activity, mean 1 over the tokens
    bids: dict[int, int]  # price -> size, micro-units
    asks: dict[int, int]
    book_hash: str
    book_ts: datetime
    last_trade: int | None = None
    fills: TokenActivity = field(default_factory=TokenActivity)
    _levels: tuple[list[tuple[float, float]], list[tuple[float, float]]] | None = None
    _stats: BookStats | None = None
    _second: datetime | None = None
    _seen: dict[tuple[int, int, bool], int] = field(default_factory=dict)

    def occurrence(self, second: datetime, fill: tuple[int, int, bool]) -> int:
        """Numbers otherwise identical fills within one second (``trade_key``'s occurrence)."""
        if second != self._second:
            self._second, self._seen = second, {}
        count = self._seen.get(fill, 0)
        self._seen[fill] = count + 1
        return count

    # -- the book ---------------------------------------------------------------------------

    def best(self) -> tuple[int | None, int | None]:
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        if self._levels is None:
            bids = [(p / MICRO, self.bids[p] / MICRO) for p in sorted(self.bids, reverse=True)]
            asks = [(p / MICRO, self.asks[p] / MICRO) for p in sorted(self.asks)]
            self._levels = (bids, asks)
        return self._levels

    def stats(self) -> BookStats:
        if self._stats is None:
            self._stats = book_stats(*self.levels(), ORDER_BOOK.wall_multiple)
        return self._stats

    def set_level(self, bid: bool, price: int, size: int, at: datetime, rng: random.Random) -> None:
        book = self.bids if bid else self.asks
        if size > 0:
            book[price] = size
        else:
            book.pop(price, None)
        self._levels = self._stats = None
        self.book_hash, self.book_ts = hex_text(rng, 20), at

    def quote(self, rng: random.Random) -> tuple[bool, int, int]:
        """A maker's change near the touch: (bid side, price, new size)."""
        bid = rng.random() < 0.5
        book = self.bids if bid else self.asks
        best_bid, best_ask = self.best()
        best, away = (best_bid, -self.tick) if bid else (best_ask, self.tick)
        if best is None:
            other = best_ask if bid else best_bid
            best = (other if other is not None else MICRO // 2) + away
        gap = 0 if best_bid is None or best_ask is None else (best_ask - best_bid) // self.tick
        if gap > 1 and rng.random() < min(0.5, 0.06 * gap):
            price = best - away * rng.randint(1, gap - 1)  # inside the spread: makers compete
        else:
            price = best + away * min(int(rng.expovariate(0.45)), 30)
        price = min(max(price, self.tick), MICRO - self.tick)
        if (bid and best_ask is not None and price >= best_ask) or (
            not bid and best_bid is not None and price <= best_bid
        ):
            price = best
        old, draw = book.get(price, 0), rng.random()
        if old and draw < 0.3 and len(book) > 1:
            new = 0
        elif old and draw < 0.6:
            new = old - min(order_size(rng), old)
            new = new if new or len(book) > 1 else old
        else:
            new = old + order_size(rng)
        return bid, price, new

    def take(self, rng: random.Random) -> tuple[bool, list[tuple[int, int, int]]]:
        """A taker's transaction: (taker buys, [(price, size, level left), ...])."""
        buys = rng.random() < 0.5
        book = self.asks if buys else self.bids
        fills: list[tuple[int, int, int]] = []
        for _ in range(fill_count(rng)):
            if not book:
                break
            price = min(book) if buys else max(book)
            size = min(book[price], order_size(rng))
            left = book[price] - size
            if left == 0 and len(book) == 1:
                left = order_size(rng)  # a maker refills the last level
            fills.append((price, size, left))
            if left:
                book[price] = left
            else:
                del book[price]
        return buys, fills


def make_market(index: int, rng: random.Random) -> SimMarket:
    draw, hours = rng.random(), 24.0
    for share, low, high in TIER_HOURS:
        if draw < share:
            hours = math.exp(rng.uniform(math.log(low), math.log(high)))
            break
        draw -= share
    info = MarketInfo(
        market_id=str(600_000 + index),
        condition_id=f"0x{hex_text(rng, 32)}",
        question=f"Question {index}?",
        neg_risk=rng.random() < 0.3,
        start_date=START - timedelta(hours=rng.uniform(1, 24 * 120)),
        end_date=START + timedelta(hours=hours),
        volume=Decimal(str(round(rng.lognormvariate(math.log(50_000), 2), 6))),
        volume_24hr=Decimal(str(round(rng.lognormvariate(math.log(2_000), 2), 6))),
        volume_1wk=Decimal(str(round(rng.lognormvariate(math.log(12_000), 2), 6))),
        liquidity=Decimal(str(round(rng.uniform(100, 50_000), 4))),
        one_week_price_change=Decimal(str(round(rng.uniform(-0.2, 0.2), 4))),
        one_month_price_change=Decimal(str(round(rng.uniform(-0.4, 0.4), 4))),
    )
    tracked = TrackedMarket(
        info=info, closed=False, tier=tier_for(info.end_date, False, START, TIERS), book_seed=None
    )
    return SimMarket(info, tracked)


def make_token(market: SimMarket, level: float, rng: random.Random) -> SimToken:
    tick = 1_000 if rng.random() < 0.2 else 10_000
    ticks = MICRO // tick
    spread = 1 + min(int(rng.expovariate(0.9)), 4) * (5 if tick == 1_000 else 1)
    bid = rng.randint(2, ticks - 2 - spread) * tick
    books: list[dict[int, int]] = [{}, {}]
    for side, (start, step) in enumerate(((bid, -tick), (bid + spread * tick, tick))):
        price = start
        for _ in range(rng.randint(3, 40)):
            if not 0 < price < MICRO:
                break
            books[side][price] = sum(order_size(rng) for _ in range(rng.randint(1, 3)))
            price += step * (1 if rng.random() < 0.7 else rng.randint(2, 3))
    token_id = str(10**76 + rng.randrange(9 * 10**76))
    return SimToken(token_id, market, tick, level, books[0], books[1], hex_text(rng, 20), START)


@dataclass
class MinuteRows:
    prices: list[PriceSnapshotRow] = field(default_factory=list)
    books: list[OrderBookSnapshotRow] = field(default_factory=list)
    features: list[FeatureRow] = field(default_factory=list)
    deltas: list[BookDeltaRow] = field(default_factory=list)
    trades: list[TradeRow] = field(default_factory=list)


def _complement(price: float) -> float:
    return (MICRO - round(price * MICRO)) / MICRO


def _optional_complement(price: float | None) -> float | None:
    return None if price is None else _complement(price)


def mirrored(delta: BookDeltaRow, token_id: str) -> BookDeltaRow:
    """``delta`` as the venue sends it on the market's other token, in the same message."""
    return delta._replace(
        token_id=token_id,
        side="SELL" if delta.side == "BUY" else "BUY",
        price=_complement(delta.price),
        best_bid=_optional_complement(delta.best_ask),
        best_ask=_optional_complement(delta.best_bid),
    )


def keyed(delta: BookDeltaRow) -> BookDeltaRow:
    """With the stream's key (``delta_seq``: a digest of the change, not a counter)."""
    return delta._replace(seq=delta_seq(delta.side, repr(delta.price), repr(delta.size)))


class VenueDay:
    """``tokens`` tokens (two a market), minute after minute from ``START``."""

    def __init__(self, tokens: int, seed: int) -> None:
        self.rng = random.Random(seed)
        markets = [make_market(i, self.rng) for i in range((tokens + 1) // 2)]
        levels = [activity_level(self.rng) for _ in range(tokens)]
        scale = len(levels) / sum(levels)
        self.tokens = [
            make_token(markets[i // 2], level * scale, self.rng) for i, level in enumerate(levels)
        ]
        # A market's two tokens trade against one book, and the venue sends each change on
        # both (a bid at p on one is an ask at 1 - p on the other): the first token's changes
        # are sent on both, and the second token's own book only feeds its snapshots.
        self.partner = {
            first.token_id: second.token_id
            for first, second in zip(self.tokens[::2], self.tokens[1::2], strict=False)
        }
        self.trade_n = 0
        self.last_books: LastWritten[OrderBookSnapshotRow] = LastWritten(
            book_digest, skip=UNCHANGED.skip, keyframe_s=UNCHANGED.keyframe_s
        )
        self.last_features: LastWritten[FeatureRow] = LastWritten(
            feature_digest, skip=UNCHANGED.skip, keyframe_s=UNCHANGED.keyframe_s
        )

    def minute(self, index: int) -> MinuteRows:
        ts = START + timedelta(minutes=index)
        rows = MinuteRows()
        if index % GAMMA_REFRESH_MIN == 0:
            self._refresh_gamma(ts)
        for token in self.tokens:
            self._snapshots(ts, token, rows)
        events: list[tuple[float, BookDeltaRow]] = []
        for token in self.tokens:
            self._events(ts, token, rows, events)
        events.sort(key=lambda pair: pair[0])
        for _, delta in events:
            partner = self.partner.get(delta.token_id)
            if partner is None:  # the market's second token: its first's mirror carries it
                continue
            rows.deltas.append(keyed(delta))
            rows.deltas.append(keyed(mirrored(delta, partner)))
        return rows

    # -- snapshots at the slot ------------------------------------------------------------------

    def _refresh_gamma(self, now: datetime) -> None:
        pairs: dict[str, list[SimToken]] = {}
        for token in self.tokens:
            pairs.setdefault(token.market.info.market_id, []).append(token)
        for tokens in pairs.values():
            stats = [t.stats() for t in tokens]
            liquidity = sum(s.bid_depth_usd + s.ask_depth_usd for s in stats) / 10
            tokens[0].market.refresh(now, stats[0].midpoint, liquidity)

    def _snapshots(self, ts: datetime, token: SimToken, rows: MinuteRows) -> None:
        stats, market = token.stats(), token.market.tracked
        last = None if token.last_trade is None else token.last_trade / MICRO
        price = stats.midpoint if stats.midpoint is not None else last
        ts_s = ts.timestamp()
        if price is not None:
            token.fills.note_price(ts_s, price)
        rows.prices.append(
            PriceSnapshotRow(
                ts, token.token_id, market.market_id, price, stats.best_bid, stats.best_ask,
                stats.spread, last, market.volume_24h, market.liquidity,
            )
        )  # fmt: skip
        book = self._book_row(ts, token, stats)
        if self.last_books.due(book):
            rows.books.append(book)
            self.last_books.remember([book])
        feature = self._feature_row(ts, token, stats)
        if self.last_features.due(feature):
            rows.features.append(feature)
            self.last_features.remember([feature])

    def _book_row(self, ts: datetime, token: SimToken, s: BookStats) -> OrderBookSnapshotRow:
        bids, asks = token.levels()
        depth = ORDER_BOOK.depth
        return OrderBookSnapshotRow(
            ts, token.token_id, token.market.info.market_id, "ws",
            orjson.dumps(bids[:depth]).decode(), orjson.dumps(asks[:depth]).decode(),
            s.best_bid, s.best_ask, s.spread, s.midpoint, s.bid_depth_usd, s.ask_depth_usd,
            s.bid_levels, s.ask_levels, *s.bid_depth, *s.ask_depth, s.imbalance,
            s.bid_wall.price if s.bid_wall else None, s.bid_wall.size if s.bid_wall else None,
            s.ask_wall.price if s.ask_wall else None, s.ask_wall.size if s.ask_wall else None,
            token.book_hash, token.book_ts,
        )  # fmt: skip

    def _feature_row(self, ts: datetime, token: SimToken, stats: BookStats) -> FeatureRow:
        """As ``polyfarm.stream.cadence.CadenceWriter.feature_row``."""
        slot_s = ts.timestamp()
        known = token.fills.known_at(slot_s, WHALES.feature_min_tier)
        last_price = known.last_trade_price
        market = token.market.tracked
        inputs = FeatureInputs(
            now=ts,
            market=market,
            stats=stats,
            depth_total=(sum(token.bids.values()) / MICRO, sum(token.asks.values()) / MICRO),
            tick_size=token.tick / MICRO,
            last_trade_price=last_price,
            last_trade_s=known.last_trade_s,
            trades=known.trades,
            minute_prices=token.fills.minute_prices(slot_s),
            last_whale_s=known.last_whale_s,
            whale_min_tier=WHALES.feature_min_tier,
        )
        return FeatureRow(ts, token.token_id, market.market_id, market.tier, feature_values(inputs))

    # -- the minute's events --------------------------------------------------------------------

    def _events(
        self,
        ts: datetime,
        token: SimToken,
        rows: MinuteRows,
        events: list[tuple[float, BookDeltaRow]],
    ) -> None:
        rng = self.rng
        kinds = [True] * poisson(rng, QUOTES_PER_MINUTE * token.level)
        kinds += [False] * poisson(rng, TRANSACTIONS_PER_MINUTE * token.level)
        if not kinds:
            return
        offsets = sorted(rng.randrange(60_000) for _ in kinds)
        rng.shuffle(kinds)
        for offset, is_quote in zip(offsets, kinds, strict=True):
            at = ts + timedelta(milliseconds=offset)
            if is_quote:
                bid, price, size = token.quote(rng)
                token.set_level(bid, price, size, at, rng)
                events.append((at.timestamp(), self._delta(at, token, bid, price, size)))
            else:
                self._transaction(at, token, rows, events)

    def _delta(
        self, at: datetime, token: SimToken, bid: bool, price: int, size: int
    ) -> BookDeltaRow:
        best_bid, best_ask = token.best()
        return BookDeltaRow(
            at, token.token_id, token.market.info.market_id, 0, "BUY" if bid else "SELL",
            price / MICRO, size / MICRO, None if best_bid is None else best_bid / MICRO,
            None if best_ask is None else best_ask / MICRO,
            at + timedelta(milliseconds=self.rng.randint(20, 400)),
        )  # fmt: skip

    def _transaction(
        self,
        at: datetime,
        token: SimToken,
        rows: MinuteRows,
        events: list[tuple[float, BookDeltaRow]],
    ) -> None:
        rng = self.rng
        buys, fills = token.take(rng)
        if not fills:
            return
        second = at.replace(microsecond=0)
        tx_hash = f"0x{hex_text(rng, 32)}"
        ws = rng.random() < 0.9
        side = "BUY" if buys else "SELL"
        for price, size, left in fills:
            self.trade_n += 1
            price_text, size_text = str(Decimal(price) / MICRO), str(Decimal(size) / MICRO)
            occurrence = token.occurrence(second, (price, size, buys))
            key = trade_key(
                token.token_id, int(second.timestamp()), price_text, size_text, side, occurrence
            )
            received = at + timedelta(milliseconds=rng.randint(20, 400))
            rows.trades.append(
                TradeRow(
                    second, token.token_id, token.market.info.market_id, key, price / MICRO,
                    size / MICRO, side, 0.0 if ws else None, tx_hash, "ws" if ws else "data_api",
                    int(at.timestamp() * 1000) if ws else None, received,
                )
            )  # fmt: skip
            notional = price / MICRO * size / MICRO
            token.market.traded += notional
            whale = sum(notional >= t for t in WHALES.thresholds())
            tick = TradeTick(at.timestamp(), price / MICRO, size / MICRO, notional, buys, whale)
            token.fills.add_trade(tick, key, WHALES.feature_min_tier)
            token.last_trade = price
            token.set_level(not buys, price, left, at, rng)
            events.append((at.timestamp(), self._delta(at, token, not buys, price, left)))
