"""One typed settings tree for the whole program.

Sources, highest priority first: keyword arguments, ``POLYFARM_*`` environment variables
(``__`` separates nesting levels, e.g. ``POLYFARM_TIERS__T4_INTERVAL_S``), an optional YAML
file (``--config``), then the defaults below (taken from the design seeds). The flat names
``POLYFARM_DATABASE_URL``, ``POLYFARM_DATA_DIR`` and the four ``POLYFARM_*_URL`` endpoints are
part of the public contract: scripts and the simulator's output rely on them.

Settings are built once in the CLI and passed down; nothing here is read at import time.
"""

from __future__ import annotations

import itertools
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from polyfarm.config_file import read_yaml_config
from polyfarm.errors import ConfigError
from polyfarm.validation import (
    check_dsn,
    check_token,
    normalise_host,
    normalise_host_pattern,
    normalise_origin,
)

GAMMA_URL = "https://gamma-api.polymarket.com"
CLOB_URL = "https://clob.polymarket.com"
DATA_URL = "https://data-api.polymarket.com"
WS_URL = "wss://ws-subscriptions-clob.polymarket.com/ws/market"


def _host_name_if_unset(value: object) -> object:
    """An unset or empty instance name (YAML ``null``, an empty variable) is the host's name."""
    return socket.gethostname() if value is None or value == "" else value


def default_data_dir() -> Path:
    """Where the embedded database and the journal live when ``POLYFARM_DATA_DIR`` is unset.

    Root gets a system path: PostgreSQL runs as an unprivileged user there, and that user
    cannot enter ``/root``.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/polyfarm")
    return Path(platformdirs.user_data_dir("polyfarm"))


# Upper bounds keep every value inside what the code does with it (timedelta, sleeps, sizes):
# a year of seconds, ten years of hours. Infinity and NaN are refused everywhere
# (``allow_inf_nan=False``): YAML's ``.inf`` is a float like any other.
YEAR_S = 365 * 86_400.0
Seconds = Annotated[float, Field(gt=0, le=YEAR_S)]
SecondsOrZero = Annotated[float, Field(ge=0, le=YEAR_S)]
Hours = Annotated[float, Field(gt=0, le=10 * 365 * 24.0)]
Usdc = Annotated[float, Field(gt=0, le=1e12)]
PerSecond = Annotated[float, Field(ge=0, le=1e6)]
Days = Annotated[int, Field(ge=1, le=36_500)]
Tier = Annotated[int, Field(ge=0, le=4)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _distinct_tiers(tiers: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(tiers)) != len(tiers):
        raise ValueError(f"each tier may be listed once, got {list(tiers)}")
    return tiers


TierList = Annotated[tuple[Tier, ...], AfterValidator(_distinct_tiers)]


def _token_or_none(token: SecretStr | None) -> SecretStr | None:
    if token is not None:
        check_token(token.get_secret_value())
    return token


def _dsn_or_none(dsn: SecretStr | None) -> SecretStr | None:
    if dsn is not None:
        check_dsn(dsn.get_secret_value())
    return dsn


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


Token = Annotated[SecretStr | None, AfterValidator(_token_or_none)]
Dsn = Annotated[SecretStr | None, AfterValidator(_dsn_or_none)]
BindHost = Annotated[str, AfterValidator(normalise_host)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class IntervalSettings(_Section):
    """Collector cadences in seconds (seed 000)."""

    metadata_s: Seconds = Field(300.0, description="Gamma metadata refresh")
    prices_s: Seconds = Field(60.0, description="price snapshots of every active market")
    orderbooks_s: Seconds = Field(300.0, description="order books of every active token")
    resolutions_s: Seconds = Field(600.0, description="resolution tracker")
    maintenance_s: Seconds = Field(300.0, description="aggregate refresh, partitions and retention")
    health_log_s: Seconds = Field(60.0, description="health line in the log")


class TierSettings(_Section):
    """Tiers by hours to close (seed 004): T0 > 48 h, T1 12-48 h, T2 4-12 h, T3 1-4 h, T4 < 1 h."""

    t0_min_hours: Hours = 48.0
    t1_min_hours: Hours = 12.0
    t2_min_hours: Hours = 4.0
    t3_min_hours: Hours = 1.0
    t0_interval_s: Seconds = 3600.0
    t1_interval_s: Seconds = 300.0
    t2_interval_s: Seconds = 60.0
    t3_interval_s: Seconds = 30.0
    t4_interval_s: Seconds = 15.0
    orderbook_tiers: TierList = (2, 3, 4)
    websocket_tiers: TierList = (0, 1, 2, 3, 4)

    @model_validator(mode="after")
    def _thresholds_descend(self) -> TierSettings:
        hours = self.thresholds()
        if any(a <= b for a, b in itertools.pairwise(hours)):
            raise ValueError(f"tier thresholds must decrease from T0 to T3, got {hours}")
        return self

    def thresholds(self) -> tuple[float, float, float, float]:
        return (self.t0_min_hours, self.t1_min_hours, self.t2_min_hours, self.t3_min_hours)

    def intervals(self) -> tuple[float, float, float, float, float]:
        return (
            self.t0_interval_s,
            self.t1_interval_s,
            self.t2_interval_s,
            self.t3_interval_s,
            self.t4_interval_s,
        )


class WhaleSettings(_Section):
    """Trade notional (USDC) tiers: large trade, whale, mega whale."""

    tier1_usdc: Usdc = 500.0
    tier2_usdc: Usdc = 2_000.0
    tier3_usdc: Usdc = 10_000.0
    feature_min_tier: int = Field(
        2, ge=1, le=3, description="whale features count trades of this tier and above"
    )

    def thresholds(self) -> tuple[float, float, float]:
        return (self.tier1_usdc, self.tier2_usdc, self.tier3_usdc)


class OrderBookSettings(_Section):
    depth: int = Field(
        5, ge=1, le=200, description="levels per side stored (packed, migration 0012)"
    )
    batch_size: int = Field(500, ge=1, le=500, description="tokens per POST /books")
    wall_multiple: float = Field(
        5.0, gt=0, le=1e6, description="a level is a wall when its size is this many times the mean"
    )


class UnchangedSettings(_Section):
    """Order-book and feature rows that repeat the previous one written for their token are
    not written again; readers take the latest row at or before a time (forward fill)."""

    skip: bool = Field(True, description="skip rows identical to the token's previous one")
    keyframe_s: Seconds = Field(
        21_600.0,
        description="a row per token in every window of this length (epoch-aligned), changed "
        "or not, so that a reader never looks back further",
    )


class RateLimitSettings(_Section):
    """Fractions of the documented per-10-second limits that the clients may use."""

    fraction: float = Field(0.7, gt=0, le=1.0)
    request_timeout_s: Seconds = 20.0
    max_retries: int = Field(6, ge=0, le=100)
    backoff_base_s: Seconds = 0.5
    backoff_max_s: Seconds = 30.0
    user_agent: str = Field("polyfarm/0.1 (+market-data recorder)", max_length=200)


class WebSocketSettings(_Section):
    assets_per_connection: int = Field(200, ge=1, le=500)
    ping_interval_s: Seconds = Field(
        5.0,
        lt=10.0,
        description="text PING cadence; the venue closes a connection idle for 10 s",
    )
    stall_timeout_s: Seconds = 60.0
    reconnect_base_s: Seconds = 1.0
    reconnect_max_s: Seconds = 60.0
    subscription_sync_s: Seconds = Field(
        15.0, description="how often shards follow the catalogue (new, closed markets)"
    )
    asset_stale_s: Seconds = Field(
        900.0, description="an asset without any message for this long counts as stale"
    )
    gap_margin_s: SecondsOrZero = Field(
        5.0, description="a lost window is widened by this much on each side"
    )
    repair_delay_s: SecondsOrZero = Field(
        30.0, description="wait after a lost window ends before asking the Data API"
    )
    repair_max_window_s: Seconds = Field(
        21_600.0, description="longer lost windows are recorded, not repaired"
    )
    repair_attempts: int = Field(5, ge=1, le=1000, description="tries per lost window")
    repair_markets_per_request: int = Field(50, ge=1, le=200)
    hash_checks_per_s: PerSecond = Field(
        500.0, description="live books checked against the venue hash; 0 turns it off"
    )
    book_refetch_per_s: PerSecond = Field(
        2.0, gt=0, description="REST re-fetches of books whose hash did not match"
    )
    crosscheck_interval_s: Seconds = Field(300.0, description="live books vs REST sample")
    crosscheck_tokens: int = Field(20, ge=0, le=100_000, description="books per cross-check")
    capture_delta_tiers: TierList = Field(
        (3, 4), description="tiers whose every price_change is stored in book_deltas"
    )
    queue_rows: int = Field(
        100_000, ge=100, le=100_000_000, description="rows a write queue holds at most"
    )
    flush_interval_s: Seconds = Field(0.05, description="longest wait before a write")


class RetentionSettings(_Section):
    """How long raw time series are kept, and (TimescaleDB) when they are compressed;
    aggregates are kept forever."""

    raw_days: Days = Field(183, description="price snapshots, trades, features")
    orderbook_days: Days = 183
    book_deltas_days: Days = 14
    compress_after_hours: Hours = Field(
        6.0,
        description="TimescaleDB compresses a chunk once its newest possible row is this old",
    )
    compress_after_days: Days | None = Field(
        None, description="deprecated: read as compress_after_hours = 24 x this"
    )
    task_runs_days: Days = 30
    partition_days_ahead: int = Field(
        3, ge=1, le=366, description="plain PostgreSQL: daily partitions made this far ahead"
    )
    seal_finished_days: bool = Field(
        True,
        description="plain PostgreSQL: rewrite each finished day of price snapshots once in "
        "token order, so that a token's day is read from a few pages (one more write of it)",
    )
    archive_before_drop: bool = Field(
        False,
        description="plain PostgreSQL: drop an expired partition only once the lake holds "
        "every row of it (polyfarm lake export recorded it in lake_archive)",
    )

    @model_validator(mode="after")
    def _one_compression_age(self) -> RetentionSettings:
        if self.compress_after_days is not None and "compress_after_hours" in self.model_fields_set:
            raise ValueError(
                "set compress_after_hours only: compress_after_days is its deprecated, "
                "day-based predecessor"
            )
        return self

    def compress_after(self) -> timedelta:
        if self.compress_after_days is not None:
            return timedelta(days=self.compress_after_days)
        return timedelta(hours=self.compress_after_hours)

    def deprecations(self) -> list[str]:
        if self.compress_after_days is None:
            return []
        hours = self.compress_after_days * 24
        return [
            f"retention.compress_after_days is deprecated: compressing after {hours} hours; "
            f"set retention.compress_after_hours: {hours} instead"
        ]


class ChunkSettings(_Section):
    """TimescaleDB: the time one chunk of each time series covers while it takes writes, and
    the length of the compressed chunks they are merged into. Sized so that the indexes of the
    chunks taking writes stay in memory at venue scale (BENCHMARKS.md, "Compression at
    production segment sizes"); applied to new chunks at start-up, so a change needs no
    migration."""

    price_snapshots_hours: Hours = 2.0
    orderbook_snapshots_hours: Hours = 2.0
    market_features_hours: Hours = 2.0
    book_deltas_hours: Hours = 1.0
    trades_hours: Hours = 4.0
    compressed_hours: Hours = Field(
        24.0,
        description="compressed chunks are merged up to this length; a multiple of every "
        "chunk interval above",
    )

    @model_validator(mode="after")
    def _merges_whole_chunks(self) -> ChunkSettings:
        merged = _microseconds(self.compressed_hours)
        for name, hours in self.by_table().items():
            if merged % _microseconds(hours):
                raise ValueError(
                    f"compressed_hours ({self.compressed_hours:g}) must be a multiple of "
                    f"{name}_hours ({hours:g})"
                )
        return self

    def by_table(self) -> dict[str, float]:
        """Hours per public table name."""
        return {
            "price_snapshots": self.price_snapshots_hours,
            "orderbook_snapshots": self.orderbook_snapshots_hours,
            "market_features": self.market_features_hours,
            "book_deltas": self.book_deltas_hours,
            "trades": self.trades_hours,
        }


def _microseconds(hours: float) -> int:
    return round(hours * 3_600_000_000)


class StorageSettings(_Section):
    """The disk polyfarm may use, and what it gives up, in this order, as that runs out: first
    ``book_deltas`` (live books stay), then the snapshot cadences of the far-from-close tiers.
    Trades and price snapshots are never given up."""

    disk_budget_gb: float | None = Field(
        None,
        gt=0,
        le=1e9,
        description="size the database may reach; unset = the free space of the filesystem "
        "holding the data directory (embedded PostgreSQL) or no limit (an external server)",
    )
    warn_days: float = Field(7.0, gt=0, le=3650, description="log a warning below this")
    stop_deltas_days: float = Field(
        2.0, gt=0, le=3650, description="stop storing book_deltas below this many days left"
    )
    slow_snapshots_days: float = Field(
        1.0, gt=0, le=3650, description="slow the slowed tiers' snapshot cadences below this"
    )
    slowed_tiers: TierList = Field(
        (0, 1), description="far-from-close tiers whose book and feature cadences are slowed"
    )
    slow_factor: float = Field(
        4.0, ge=1, le=1000, description="slowed cadences are this many times longer"
    )
    sample_interval_s: float = Field(
        60.0, ge=60, le=YEAR_S, description="how often the database size is sampled"
    )
    rate_window_s: float = Field(
        3600.0, ge=60, le=YEAR_S, description="growth rate over this much of the latest samples"
    )
    min_rate_span_s: float = Field(
        600.0, ge=60, le=YEAR_S, description="no growth rate before samples span this long"
    )

    @model_validator(mode="after")
    def _thresholds_descend(self) -> StorageSettings:
        days = (self.warn_days, self.stop_deltas_days, self.slow_snapshots_days)
        if any(a <= b for a, b in itertools.pairwise(days)):
            raise ValueError(
                f"warn_days > stop_deltas_days > slow_snapshots_days is required, got {list(days)}"
            )
        if self.min_rate_span_s > self.rate_window_s:
            raise ValueError("min_rate_span_s may not exceed rate_window_s")
        return self

    def budget_bytes(self) -> int | None:
        gb = self.disk_budget_gb
        return None if gb is None else int(gb * 1e9)


class WriterSettings(_Section):
    batch_rows: int = Field(50_000, ge=1, le=10_000_000)
    max_future_skew_s: Seconds = Field(
        86_400.0, description="rows stamped later than now + this are rejected"
    )


class JournalSettings(_Section):
    """The on-disk journal that holds batches while the database is unavailable."""

    max_mb: float = Field(
        1024.0, gt=0, le=10_000_000, description="size cap; past it new batches are dropped"
    )
    directory: Path | None = Field(None, description="default: <data_dir>/journal")


class DatabaseSettings(_Section):
    pool_min: int = Field(1, ge=1, le=1000)
    pool_max: int = Field(8, ge=1, le=1000)
    command_timeout_s: Seconds = 60.0


class LakeSettings(_Section):
    """The Parquet lake: sealed UTC days of every time series, on local disk or S3."""

    url: str | None = Field(
        None, description="a folder or s3://bucket/prefix; default: <data_dir>/lake"
    )
    s3_endpoint: str | None = Field(
        None, description="an S3-compatible endpoint (MinIO, R2, ...), e.g. http://host:9000"
    )
    s3_region: str | None = None
    s3_access_key: SecretStr | None = Field(None, description="default: the AWS environment")
    s3_secret_key: SecretStr | None = None
    seal_after_hours: float = Field(
        2.0, ge=0, le=24 * 30, description="a day is exported this long after it ends"
    )


class BackfillSettings(_Section):
    """What the venue still serves of the past: ``polyfarm backfill``, the first start of
    ``polyfarm collect`` and the daemon's repair of its own minute grid."""

    first_start: bool = Field(
        True, description="on a new database, collect backfills the open markets' recent past"
    )
    first_start_days: Days = Field(7, description="how far back the first-start backfill goes")
    first_start_trades: bool = Field(True, description="the first-start backfill fetches trades")
    grid_repair: bool = Field(True, description="fill minutes the collector missed from history")
    grid_repair_interval_s: Seconds = Field(600.0, description="how often the grid is checked")
    grid_repair_settle_s: Seconds = Field(
        180.0, description="minutes younger than this are left for the next check"
    )
    grid_repair_lookback_days: Days = Field(7, description="how far back a check looks at most")
    background_rate_fraction: float = Field(
        0.2,
        gt=0,
        le=1.0,
        description="share of each documented rate limit the daemon's background backfill and "
        "grid repair use, beside the live collectors' rate_limits.fraction",
    )
    concurrency: int = Field(16, ge=1, le=1000, description="requests in flight")
    markets_per_request: int = Field(
        50, ge=1, le=200, description="markets per Data API trade request"
    )


class BackupSettings(_Section):
    """``polyfarm db backup``: pg_dump archives kept on disk, optionally copied to the lake."""

    directory: Path | None = Field(None, description="default: <data_dir>/backups")
    keep: int = Field(7, ge=1, le=10_000, description="newest backups kept; older ones go")
    upload: bool = Field(
        False, description="copy each backup to <lake>/backups/ (lake.url and its S3 options)"
    )


class ApiSettings(_Section):
    """The monitoring API and dashboard (``polyfarm serve``, and ``polyfarm demo``)."""

    host: BindHost = Field("127.0.0.1", description="bind address; loopback unless set")
    port: int = Field(8000, ge=0, le=65535)
    token: Token = Field(
        None,
        description="bearer token for /api, /health/detailed and /metrics (16 characters or "
        "more); unset = open",
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="browser origins allowed to call the API; explicit, never '*'"
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host names the API answers to besides loopback names and api.host; "
        "'*.example.com' allows subdomains",
    )
    dashboard_dir: Path | None = Field(
        None, description="built dashboard to serve at /; unset = the build shipped in the package"
    )
    database_url: Dsn = Field(
        None,
        description="DSN the API reads through; unset = the main database as polyfarm_reader",
    )

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_origin(origin) for origin in origins)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_host_pattern(host) for host in hosts)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POLYFARM_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    database_url: Dsn = Field(
        None, description="PostgreSQL/TimescaleDB DSN; unset means the embedded PostgreSQL"
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    gamma_url: str = GAMMA_URL
    clob_url: str = CLOB_URL
    data_url: str = DATA_URL
    ws_url: str = WS_URL
    log_level: Annotated[LogLevel, BeforeValidator(_upper)] = "INFO"
    log_json: bool | None = Field(None, description="JSON logs; default: JSON unless a TTY")
    metrics_host: BindHost = Field("127.0.0.1", description="the collector's /metrics endpoint")
    metrics_port: int = Field(9464, ge=0, le=65535, description="0 turns the endpoint off")
    instance: Annotated[str, BeforeValidator(_host_name_if_unset)] = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=128,
        description="this collector's name when several write into one database",
    )

    database: DatabaseSettings = DatabaseSettings()
    intervals: IntervalSettings = IntervalSettings()
    tiers: TierSettings = TierSettings()
    whales: WhaleSettings = WhaleSettings()
    orderbook: OrderBookSettings = OrderBookSettings()
    unchanged: UnchangedSettings = UnchangedSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    websocket: WebSocketSettings = WebSocketSettings()
    retention: RetentionSettings = RetentionSettings()
    chunks: ChunkSettings = ChunkSettings()
    writer: WriterSettings = WriterSettings()
    journal: JournalSettings = JournalSettings()
    storage: StorageSettings = StorageSettings()
    api: ApiSettings = ApiSettings()
    lake: LakeSettings = LakeSettings()
    backup: BackupSettings = BackupSettings()
    backfill: BackfillSettings = BackfillSettings()

    def deprecations(self) -> list[str]:
        """One message per deprecated setting in use, for the log once logging is set up."""
        return self.retention.deprecations()

    def journal_dir(self) -> Path:
        return self.journal.directory or self.data_dir / "journal"

    def backup_dir(self) -> Path:
        return self.backup.directory or self.data_dir / "backups"

    def lake_url(self) -> str:
        return self.lake.url or str(self.data_dir / "lake")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _default_data_dir_for_null(cls, value: object) -> object:
        return default_data_dir() if value is None else value

    @field_validator("gamma_url", "clob_url", "data_url", "ws_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs (see load_settings); env must beat it.
        return (env_settings, init_settings)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings tree: env over YAML file over defaults; ``overrides`` beat YAML."""
    values: dict[str, Any] = read_yaml_config(config_file) if config_file else {}
    values.update(overrides)
    source = f" (from {config_file})" if config_file else ""
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings{source}: {describe_errors(exc)}") from None
    except ValueError as exc:  # pydantic-settings: an environment value that is not JSON
        raise ConfigError(f"invalid settings{source}: {exc}") from None


ModelT = TypeVar("ModelT", bound=BaseModel)


def validated_copy(model: ModelT, changes: dict[str, Any]) -> ModelT:
    """``model`` with ``changes`` applied and validated (``model_copy`` would skip that)."""
    try:
        return model.model_validate({**dict(model), **changes})
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {describe_errors(exc)}") from None


def describe_errors(error: ValidationError) -> str:
    """One line per problem, ``where: what``, without the offending values: a value may be a
    password or a token, and the location says enough to find it."""
    problems = error.errors(include_input=False, include_url=False, include_context=False)
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'settings'}: {problem['msg']}"
        for problem in problems
    )
