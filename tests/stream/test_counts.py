"""The stream's typed counts reach Prometheus under the names dashboards read."""

from __future__ import annotations

from collections import Counter

from polyfarm.metrics import Metrics
from polyfarm.polymarket.domain import (
    BestBidAsk,
    BookSnapshot,
    Counters,
    MarketResolved,
    NewMarket,
    PriceChange,
    TickSizeChange,
    TradePrint,
    WsCount,
)
from polyfarm.stream.bookcheck import HashCheckKey, HashOutcome
from polyfarm.stream.counts import StreamCounts, StreamEvent
from polyfarm.stream.housekeeping import CountExport
from polyfarm.stream.livebook import HashSource

# The ``polyfarm_stream_events_total`` labels: a rename breaks dashboards.
EVENT_LABELS = {
    "delta_before_snapshot", "delta_in_snapshot", "delta_reordered", "repeated_delta_message",
    "trade_untracked_token", "trade_without_side", "repeated_fill", "book_untracked_token",
    "lifecycle_dropped", "backpressure", "hash_match", "hash_mismatch", "hash_unverifiable",
    "seed_fetch_failed", "seeded_from_clob", "refetch_absent", "refetch_live_newer",
    "refetch_agreed", "refetch_replaced", "crosscheck_absent", "crosscheck_diverged",
    "crosscheck_agreed", "crosscheck_moved", "rest_book_errors", "stall_probe_failed",
    "stall_confirmed", "stall_confirmed_book_gone", "quiet_connection", "asset_silent",
    "quarantine_overflow",
}  # fmt: skip
WS_EVENT_LABELS = {
    "ws_messages", "ws_unknown_event_type", "ws_control_pong", "ws_control_ping",
    "ws_control_no_new_assets",
}  # fmt: skip
MESSAGE_LABELS = {
    PriceChange: "price_change",
    TradePrint: "last_trade_price",
    BookSnapshot: "book",
    BestBidAsk: "best_bid_ask",
    TickSizeChange: "tick_size_change",
    NewMarket: "new_market",
    MarketResolved: "market_resolved",
}


def samples(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    found = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sample.labels.values())] = sample.value
    return found


def test_every_count_is_exported_under_its_old_name_and_only_its_growth() -> None:
    metrics = Metrics()
    counts, ws_counters = StreamCounts(), Counters()
    hash_checks: Counter[HashCheckKey] = Counter()
    export = CountExport(
        metrics=metrics, counts=counts, ws_counters=ws_counters, hash_checks=hash_checks
    )
    for n, event in enumerate(StreamEvent, start=1):
        counts.add(event, n)
    for n, kind in enumerate(MESSAGE_LABELS, start=1):
        counts.messages[kind] += n
    for n, count in enumerate(WsCount, start=1):
        ws_counters.incr(count, n)
    hash_checks[HashSource.WS_BOOK, HashOutcome.VERIFIED] += 3
    export.export()
    counts.add(StreamEvent.HASH_MATCH, 5)
    counts.messages[TradePrint] += 2
    ws_counters.incr(WsCount.BAD_FRAME)
    export.export()
    export.export()  # nothing grew

    events = samples(metrics, "polyfarm_stream_events_total")
    assert {label for (label,) in events} == EVENT_LABELS | WS_EVENT_LABELS
    assert events["hash_match",] == list(StreamEvent).index(StreamEvent.HASH_MATCH) + 1 + 5
    assert events["ws_control_pong",] == list(WsCount).index(WsCount.CONTROL_PONG) + 1
    messages = samples(metrics, "polyfarm_ws_messages_total")
    assert {label for (label,) in messages} == set(MESSAGE_LABELS.values())
    assert messages["last_trade_price",] == 2 + 2
    refused = ws_counters.get(WsCount.BAD_FRAME) + ws_counters.get(WsCount.BAD_MESSAGE)
    assert samples(metrics, "polyfarm_parse_errors_total") == {("ws",): refused}
    assert samples(metrics, "polyfarm_book_hash_checks_total") == {("ws_book", "verified"): 3}
