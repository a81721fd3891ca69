"""Prometheus metrics, one registry per process (never the library's global default).

A ``Metrics`` object is created by the entry point and passed to whatever records: the writer,
the supervisor, the stream, the journal, the API. Names follow Prometheus conventions
(``_total`` counters, base units: seconds, bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Metrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        # Collectors and the supervisor.
        self.cycles = Counter(
            "polyfarm_cycles_total",
            "Collector cycles by outcome",
            ["collector", "status"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "polyfarm_cycle_seconds",
            "Duration of collector cycles",
            ["collector"],
            registry=r,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
        )
        self.last_success = Gauge(
            "polyfarm_collector_last_success_timestamp_seconds",
            "Unix time of each collector's last successful cycle",
            ["collector"],
            registry=r,
        )
        self.service_restarts = Counter(
            "polyfarm_service_restarts_total",
            "Restarts of long-running services",
            ["service"],
            registry=r,
        )
        self.loop_stalls = Counter(
            "polyfarm_event_loop_stalls_total",
            "Times the event loop did not run for longer than the stall threshold",
            registry=r,
        )
        self.loop_stall_seconds = Histogram(
            "polyfarm_event_loop_stall_seconds",
            "How long each event-loop stall lasted",
            registry=r,
            buckets=(1, 2, 5, 10, 20, 30, 60),
        )
        # Sources.
        self.api_errors = Counter(
            "polyfarm_source_errors_total",
            "Errors from Polymarket endpoints",
            ["source", "kind"],
            registry=r,
        )
        self.messages = Counter(
            "polyfarm_ws_messages_total",
            "WebSocket messages received by type",
            ["type"],
            registry=r,
        )
        self.parse_errors = Counter(
            "polyfarm_parse_errors_total", "Records refused by a parser", ["source"], registry=r
        )
        self.markets_by_protocol = Gauge(
            "polyfarm_markets_by_protocol",
            "Open markets of the last metadata scan by the scheme of their trading ids (v1, v2)"
            " and whether Gamma declared a version (declared, absent)",
            ["protocol", "version_field"],
            registry=r,
        )
        self.reconnects = Counter(
            "polyfarm_ws_reconnects_total", "WebSocket reconnects by reason", ["reason"], registry=r
        )
        self.ws_connected = Gauge(
            "polyfarm_ws_connected_shards", "Connected WebSocket shards", registry=r
        )
        # Writes.
        self.rows_written = Counter(
            "polyfarm_rows_written_total", "Rows stored per table", ["table"], registry=r
        )
        self.rows_duplicate = Counter(
            "polyfarm_rows_duplicate_total", "Rows skipped as already stored", ["table"], registry=r
        )
        self.rows_rejected = Counter(
            "polyfarm_rows_rejected_total", "Rows refused by validation", ["table"], registry=r
        )
        self.write_seconds = Histogram(
            "polyfarm_write_seconds",
            "Latency of one batch write",
            ["table"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.queue_depth = Gauge(
            "polyfarm_queue_depth", "Rows waiting in write queues", ["queue"], registry=r
        )
        self.database_up = Gauge(
            "polyfarm_database_up",
            "1 when the collector's last probe of its database (SELECT 1, every 15 s) answered,"
            " 0 when it did not",
            registry=r,
        )
        self.journal_bytes = Gauge(
            "polyfarm_journal_bytes", "Size of the on-disk write journal", registry=r
        )
        self.journal_max_bytes = Gauge(
            "polyfarm_journal_max_bytes",
            "The journal's cap (journal.max_mb); past it new batches are dropped",
            registry=r,
        )
        # The market WebSocket stream.
        self.stream_latency = Histogram(
            "polyfarm_stream_latency_seconds",
            "From a WebSocket frame's arrival to its row's commit",
            ["table"],
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.stream_events = Counter(
            "polyfarm_stream_events_total",
            "Stream happenings by kind (ignored deltas, repeated fills, hash mismatches, ...)",
            ["event"],
            registry=r,
        )
        self.book_hashes = Counter(
            "polyfarm_book_hash_checks_total",
            "Live books checked against the venue's hash, by where that hash came from (ws_book,"
            " ws_price_change, rest) and outcome (verified, mismatched, unverifiable)",
            ["source", "outcome"],
            registry=r,
        )
        self.feed_gaps = Counter(
            "polyfarm_feed_gaps_total",
            "Lost windows by stream and outcome (detected, repaired, unrepaired)",
            ["stream", "outcome"],
            registry=r,
        )
        self.stale_assets = Gauge(
            "polyfarm_ws_stale_assets",
            "Subscribed assets without any message for websocket.asset_stale_s",
            registry=r,
        )
        # TimescaleDB's background jobs (compression, retention, refreshes), read each minute.
        self.timescaledb_jobs = Gauge(
            "polyfarm_timescaledb_jobs",
            "TimescaleDB background jobs by state (failing, overdue, paused, ok); absent on"
            " plain PostgreSQL",
            ["state"],
            registry=r,
        )
        job = ["job_id", "proc", "hypertable"]
        self.timescaledb_job_failures = Gauge(
            "polyfarm_timescaledb_job_failures",
            "Failed runs of each TimescaleDB job since it was created (job_stats.total_failures)",
            job,
            registry=r,
        )
        self.timescaledb_job_last_success = Gauge(
            "polyfarm_timescaledb_job_last_success_timestamp_seconds",
            "Unix time of each TimescaleDB job's last successful run (absent: never)",
            job,
            registry=r,
        )
        # The disk budget (store/disk_watch.py), sampled each storage.sample_interval_s;
        # NaN while unknown (no limit known, or samples too short for a rate).
        self.database_size = Gauge(
            "polyfarm_database_size_bytes", "Size of the database (pg_database_size)", registry=r
        )
        self.disk_budget = Gauge(
            "polyfarm_disk_budget_bytes",
            "Size the database may reach: storage.disk_budget_gb, else its size plus the free"
            " space of the data directory's disk",
            registry=r,
        )
        self.disk_headroom = Gauge(
            "polyfarm_disk_headroom_bytes",
            "What the database may still grow by (budget or free space, the smaller)",
            registry=r,
        )
        self.disk_growth = Gauge(
            "polyfarm_disk_growth_bytes_per_day",
            "Growth of the database over storage.rate_window_s, per day",
            registry=r,
        )
        self.disk_days_left = Gauge(
            "polyfarm_disk_days_left",
            "Days until the headroom is used at the current growth (+Inf: not growing)",
            registry=r,
        )
        self.disk_retention_days = Gauge(
            "polyfarm_disk_retention_days",
            "The longest retention of a time series, in days (retention.*_days)",
            registry=r,
        )
        self.disk_retention_days_fit = Gauge(
            "polyfarm_disk_retention_days_fit",
            "Days of rows the disk budget holds at each time series' last whole day of growth"
            " and retention (plain PostgreSQL; NaN: unknown)",
            registry=r,
        )
        self.disk_pressure = Gauge(
            "polyfarm_disk_pressure",
            "1 for the storage level in force (ok, low, deltas_stopped, snapshots_slowed)",
            ["state"],
            registry=r,
        )
        # API.
        self.http_requests = Counter(
            "polyfarm_api_requests_total", "API requests", ["route", "status"], registry=r
        )
        self.http_seconds = Histogram(
            "polyfarm_api_request_seconds",
            "API request latency by route",
            ["route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
