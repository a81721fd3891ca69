from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from polyfarm.errors import ConfigError
from polyfarm.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
CONFIG_KEYS = [*sorted(Settings.model_fields), "tiers", "t4_interval_s", "fraction"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("POLYFARM_"):
            monkeypatch.delenv(name)


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += leaf_keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_example_config_holds_exactly_the_defaults() -> None:
    assert load_settings(ROOT / "config.example.yaml") == Settings()


def test_example_config_documents_every_key() -> None:
    import yaml

    loaded = yaml.safe_load((ROOT / "config.example.yaml").read_text())

    def flatten(tree: dict, prefix: str = "") -> list[str]:
        out = []
        for key, value in tree.items():
            out += flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
        return out

    assert sorted(flatten(loaded)) == sorted(leaf_keys(Settings))


def test_env_beats_yaml_and_nested_env_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("gamma_url: http://from-yaml/\ntiers:\n  t4_interval_s: 5\n")
    assert load_settings(config).gamma_url == "http://from-yaml"
    assert load_settings(config).tiers.t4_interval_s == 5
    monkeypatch.setenv("POLYFARM_GAMMA_URL", "http://from-env")
    monkeypatch.setenv("POLYFARM_TIERS__T4_INTERVAL_S", "7")
    monkeypatch.setenv("POLYFARM_DATABASE_URL", "postgresql://u:pw-7d1e@h/db")
    monkeypatch.setenv("POLYFARM_LAKE__S3_SECRET_KEY", "key-93fa")
    settings = load_settings(config)
    assert settings.gamma_url == "http://from-env"
    assert settings.tiers.t4_interval_s == 7
    assert settings.database_url is not None
    assert settings.lake.s3_secret_key is not None
    assert "pw-7d1e" not in repr(settings)
    assert "key-93fa" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tiers: [1, 2", "not valid YAML"),
        ("- a list", "mapping at the top level"),
        ("no_such_key: 1", "invalid settings"),
        ("rate_limits:\n  fraction: 3", "invalid settings"),
        ("tiers:\n  t4_interval_s: soon", "invalid settings"),
    ],
)
def test_bad_config_files_give_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_compression_age_is_in_hours_and_the_days_setting_still_reads() -> None:
    assert Settings().retention.compress_after() == timedelta(hours=6)
    assert Settings().deprecations() == []
    hours = load_settings(retention={"compress_after_hours": 1.5})
    assert hours.retention.compress_after() == timedelta(minutes=90)
    days = load_settings(retention={"compress_after_days": 2})
    assert days.retention.compress_after() == timedelta(days=2)
    (message,) = days.deprecations()
    assert "compress_after_days is deprecated" in message
    assert "compress_after_hours: 48" in message
    with pytest.raises(ConfigError, match="set compress_after_hours only"):
        load_settings(retention={"compress_after_days": 2, "compress_after_hours": 6})


def test_compressed_chunks_merge_whole_chunks() -> None:
    assert Settings().chunks.compressed_hours == 24
    assert load_settings(chunks={"trades_hours": 8}).chunks.trades_hours == 8
    with pytest.raises(ConfigError, match="multiple of trades_hours"):
        load_settings(chunks={"trades_hours": 5})
    with pytest.raises(ConfigError, match="multiple of book_deltas_hours"):
        load_settings(chunks={"compressed_hours": 12, "book_deltas_hours": 24})


def test_readme_documents_every_setting_and_command() -> None:
    from polyfarm.cli import cli

    readme = (ROOT / "README.md").read_text()
    for key in leaf_keys(Settings):
        env = "POLYFARM_" + key.upper().replace(".", "__")
        assert env in readme, f"README does not document {env}"

    def commands(group: object, prefix: str) -> list[str]:
        found = []
        for name, command in getattr(group, "commands", {}).items():
            found.append(f"{prefix} {name}")
            found += commands(command, f"{prefix} {name}")
        return found

    for command in commands(cli, "polyfarm"):
        assert f"`{command}" in readme, f"README does not document `{command}`"


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
yaml_trees = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(CONFIG_KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(tree=st.dictionaries(st.sampled_from(CONFIG_KEYS), yaml_trees, max_size=5))
def test_any_config_tree_loads_or_fails_with_a_config_error(tree: dict) -> None:  # type: ignore[type-arg]
    import yaml

    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "fuzz.yaml"
        config.write_text(yaml.safe_dump(tree))
        try:
            loaded = load_settings(config)
        except ConfigError:
            return
        assert isinstance(loaded, Settings)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_any_config_text_loads_or_fails_with_a_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "fuzz.yaml"
        config.write_text(text)
        with contextlib.suppress(ConfigError):
            load_settings(config)


# -- refused values (each of these was accepted once) --------------------------------------------


@pytest.mark.parametrize("token", ["", "   ", "\t", "short", "sixteen chars ok", "é" * 16])
def test_empty_short_or_spaced_tokens_are_refused(token: str) -> None:
    with pytest.raises(ConfigError, match=r"api\.token") as refused:
        load_settings(api={"token": token})
    assert token.strip() == "" or token not in str(refused.value), "the token is never echoed"


@pytest.mark.parametrize(
    "origin",
    ["*", "*/", "*//", " * ", "null", "http://*", "file://", "http://a.example/path",
     "http://user:pw@a.example", "a.example", "http://a.example?x=1", "javascript:alert(1)"],
)  # fmt: skip
def test_origins_must_be_scheme_host_and_port(origin: str) -> None:
    with pytest.raises(ConfigError, match=r"api\.cors_origins"):
        load_settings(api={"cors_origins": [origin]})


def test_origins_are_normalised_as_browsers_send_them() -> None:
    origins = ["HTTP://Grafana.Local:3000/", "https://a.example:443", "http://[::1]:8080"]
    loaded = load_settings(api={"cors_origins": origins}).api.cors_origins
    assert loaded == ("http://grafana.local:3000", "https://a.example", "http://[::1]:8080")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
def test_infinite_and_nan_numbers_are_refused(tmp_path: Path, value: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"intervals:\n  prices_s: {value}\n")
    with pytest.raises(ConfigError, match=r"intervals\.prices_s"):
        load_settings(config)


def test_unknown_log_levels_are_refused_and_case_is_forgiven() -> None:
    with pytest.raises(ConfigError, match="log_level"):
        load_settings(log_level="LOUD")
    assert load_settings(log_level="warning").log_level == "WARNING"


@pytest.mark.parametrize("tiers", [[9, -1], [5], [-1], [2, 2]])
def test_tier_lists_hold_distinct_tiers_from_0_to_4(tiers: list[int]) -> None:
    for key in ("orderbook_tiers", "websocket_tiers"):
        with pytest.raises(ConfigError, match=key):
            load_settings(tiers={key: tiers})
    with pytest.raises(ConfigError, match="capture_delta_tiers"):
        load_settings(websocket={"capture_delta_tiers": tiers})


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://u:hunter2@[::1/db", "mysql://u:hunter2@h/db", "postgresql://u:hunter2@h:99999/db",
     "postgresql://u:hunter2@h:port/db", "hunter2", "postgresql://u:hunter2@h/db?port=0"],
)  # fmt: skip
def test_malformed_database_urls_are_refused_without_their_password(dsn: str) -> None:
    for overrides in ({"database_url": dsn}, {"api": {"database_url": dsn}}):
        with pytest.raises(ConfigError, match="database_url") as refused:
            load_settings(**overrides)  # type: ignore[arg-type]
        assert "hunter2" not in str(refused.value)


def test_the_largest_allowed_values_still_make_valid_durations() -> None:
    from datetime import timedelta

    from polyfarm.settings import YEAR_S

    biggest = load_settings(intervals={"prices_s": YEAR_S}, retention={"raw_days": 36_500})
    assert timedelta(seconds=3 * biggest.intervals.prices_s + 60) > timedelta(0)
    with pytest.raises(ConfigError, match=r"intervals\.prices_s"):
        load_settings(intervals={"prices_s": 1e300})
