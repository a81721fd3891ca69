"""The YAML settings file: hostile files are refused up front, quickly, with one clear error."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from polyfarm.config_file import MAX_BYTES, MAX_DEPTH, MAX_NODES, parse_yaml_text
from polyfarm.errors import ConfigError
from polyfarm.settings import load_settings

from .support import BILLION_LAUGHS


def refused(tmp_path: Path, content: bytes, match: str) -> None:
    config = tmp_path / "hostile.yaml"
    config.write_bytes(content)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=match) as error:
        load_settings(config)
    assert time.monotonic() - started < 5, "refused up front, not after the damage"
    assert "\n" not in str(error.value).strip() or "YAML" in str(error.value)


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    refused(tmp_path, BILLION_LAUGHS.encode(), "aliases expand to more than")


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, b"api: " + b"[" * 5000 + b"]" * 5000, f"deeper than {MAX_DEPTH}")
    refused(tmp_path, b"api: " + b"{a: " * 5000 + b"}" * 5000, f"deeper than {MAX_DEPTH}")


def test_a_file_that_is_not_utf8_is_refused_clearly(tmp_path: Path) -> None:
    refused(tmp_path, b"log_level: INFO\napi:\n  host: \xff\xfe127.0.0.1\n", "is not UTF-8 text")


def test_an_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    refused(tmp_path, b"# padding\n" * (MAX_BYTES // 10 + 1), "larger than")


def test_a_directory_device_or_fifo_is_a_config_error(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in (tmp_path, Path("/dev/zero"), fifo):
        with pytest.raises(ConfigError, match="is not a regular file"):
            load_settings(path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.yaml")


def test_ordinary_anchors_still_work(tmp_path: Path) -> None:
    config = tmp_path / "anchors.yaml"
    config.write_text(
        "tiers:\n  orderbook_tiers: &t [3, 4]\nwebsocket:\n  capture_delta_tiers: *t\n"
    )
    loaded = load_settings(config)
    assert loaded.tiers.orderbook_tiers == loaded.websocket.capture_delta_tiers == (3, 4)


# -- properties of the bounded loader -----------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)
)
trees = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(tree=trees)
def test_documents_within_the_limits_load_as_safe_load_does(tree: object) -> None:
    text = yaml.safe_dump(tree)
    assert parse_yaml_text(text) == yaml.safe_load(text)


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(MAX_DEPTH + 1, 3 * MAX_DEPTH), flow=st.booleans())
def test_any_nesting_past_the_limit_is_refused(depth: int, flow: bool) -> None:
    text = "[" * depth + "]" * depth if flow else "".join(f"{'  ' * i}- \n" for i in range(depth))
    with pytest.raises(yaml.YAMLError, match="deeper than"):
        parse_yaml_text(text)


@settings(max_examples=50, deadline=None)
@given(width=st.integers(2, 12), levels=st.integers(2, 12))
def test_alias_expansion_is_bounded_whatever_its_shape(width: int, levels: int) -> None:
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    text = "\n".join(lines)
    expanded = sum(width**n for n in range(1, levels + 1)) + levels  # leaves, lists and keys
    if expanded > 2 * MAX_NODES:
        with pytest.raises(yaml.YAMLError, match="aliases expand"):
            parse_yaml_text(text)
    elif expanded < MAX_NODES // 2:
        assert len(parse_yaml_text(text)) == levels
