"""Properties of the validators at polyfarm's edges: whatever text arrives, each either refuses
it with a ValueError or returns a value of the promised shape; secrets never leak into a
message; every float setting refuses infinity and NaN."""

from __future__ import annotations

import math
import re
import string
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from polyfarm.errors import ConfigError
from polyfarm.settings import Settings, load_settings
from polyfarm.store.database import redact_dsn
from polyfarm.validation import (
    MIN_TOKEN_LENGTH,
    check_dsn,
    check_token,
    host_matches,
    host_of_header,
    normalise_host,
    normalise_host_pattern,
    normalise_origin,
)

ORIGIN = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?")
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
hosts = hostnames | ipv4 | ipv6
ports = st.integers(1, 65535)
junk = st.text(max_size=60) | st.text(alphabet=string.printable + "*[]:@/?#%\x00", max_size=60)


@settings(max_examples=500)
@given(text=junk)
def test_an_origin_is_refused_or_comes_back_in_canonical_form(text: str) -> None:
    try:
        origin = normalise_origin(text)
    except ValueError:
        return
    assert ORIGIN.fullmatch(origin), origin
    assert "*" not in origin
    assert normalise_origin(origin) == origin


@settings(max_examples=300)
@given(scheme=st.sampled_from(["http", "https", "HTTP", "Https"]), host=hosts, port=ports,
       slash=st.booleans())  # fmt: skip
def test_every_real_origin_is_accepted_as_browsers_send_it(
    scheme: str, host: str, port: int, slash: bool
) -> None:
    shown = f"[{host}]" if ":" in host else host
    origin = normalise_origin(f"{scheme}://{shown.upper()}:{port}{'/' if slash else ''}")
    default = {"http": 80, "https": 443}[scheme.lower()]
    expected_host = f"[{normalise_host(host)}]" if ":" in host else host
    suffix = "" if port == default else f":{port}"
    assert origin == f"{scheme.lower()}://{expected_host}{suffix}"


@settings(max_examples=200)
@given(prefix=st.text(max_size=5), suffix=st.text(max_size=5))
def test_a_wildcard_is_refused_in_any_disguise(prefix: str, suffix: str) -> None:
    with pytest.raises(ValueError, match="wildcard"):
        normalise_origin(f"{prefix}*{suffix}")


@settings(max_examples=500)
@given(value=junk)
def test_a_host_header_is_parsed_or_refused(value: str) -> None:
    host = host_of_header(value)
    if host is not None:
        assert normalise_host(host) == host
        assert host == host.lower()


@settings(max_examples=300)
@given(host=hosts, port=st.none() | ports)
def test_a_well_formed_host_header_yields_its_host(host: str, port: int | None) -> None:
    shown = f"[{host}]" if ":" in host else host
    header = shown if port is None else f"{shown}:{port}"
    assert host_of_header(header) == normalise_host(host)


@settings(max_examples=300)
@given(host=hostnames, sub=labels, other=hostnames)
def test_a_subdomain_pattern_matches_subdomains_only(host: str, sub: str, other: str) -> None:
    patterns = (normalise_host_pattern(f"*.{host}"),)
    assert host_matches(f"{sub}.{host}", patterns)
    assert not host_matches(host, patterns)
    assume(other != host)
    assume(not other.endswith(f".{host}"))
    assume(not f"{host}.{other}".endswith(f".{host}"))
    assert not host_matches(other, patterns)
    assert not host_matches(f"{host}.{other}", patterns)


@settings(max_examples=300)
@given(token=st.text(max_size=40))
def test_a_token_is_long_printable_ascii_or_refused_without_being_echoed(token: str) -> None:
    try:
        assert check_token(token) == token
    except ValueError as exc:
        message = str(exc)
        assert len(token) < 4 or token not in message
        return
    assert len(token) >= MIN_TOKEN_LENGTH
    assert all(33 <= ord(char) <= 126 for char in token)


passwords = st.text(alphabet=string.ascii_letters + string.digits, max_size=12).map(
    lambda text: f"SeCrEt{text}"  # distinct from any word a message could hold
)
dsn_tails = st.text(alphabet=string.printable.replace(":", ""), max_size=30)


@settings(max_examples=500)
@given(password=passwords, head=st.sampled_from(["postgresql", "postgres", "mysql", "", "http"]),
       host=dsn_tails, tail=dsn_tails)  # fmt: skip
def test_a_dsn_is_checked_and_redacted_without_showing_its_password(
    password: str, head: str, host: str, tail: str
) -> None:
    assume(password not in host + tail)
    dsn = f"{head}://user:{password}@{host}/{tail}"
    assert password not in redact_dsn(dsn)
    try:
        checked = check_dsn(dsn)
    except ValueError as exc:
        refusal = str(exc)
        assert password not in refusal
        return
    assert checked == dsn
    assert dsn.startswith(("postgresql://", "postgres://"))


@settings(max_examples=200)
@given(host=hosts, port=st.integers(-10, 200_000))
def test_a_dsn_port_outside_1_to_65535_is_refused(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    dsn = f"postgresql://u@{shown}:{port}/db"
    if 1 <= port <= 65535:
        assert check_dsn(dsn) == dsn
    else:
        with pytest.raises(ValueError, match="port"):
            check_dsn(dsn)


# -- every float of the settings tree ----------------------------------------------------------


def float_settings(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += float_settings(annotation, (*prefix, name))
        elif annotation is float:
            found.append((*prefix, name))
    return found


FLOATS = float_settings(Settings)


def nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    tree: Any = value
    for key in reversed(path):
        tree = {key: tree}
    return dict(tree)


def test_the_settings_tree_has_the_floats_this_test_walks() -> None:
    assert len(FLOATS) >= 35
    assert ("intervals", "prices_s") in FLOATS


@settings(max_examples=300)
@given(path=st.sampled_from(FLOATS), value=st.sampled_from([math.inf, -math.inf, math.nan, 1e308]))
def test_no_float_setting_takes_infinity_nan_or_absurd_sizes(
    path: tuple[str, ...], value: float
) -> None:
    with pytest.raises(ConfigError, match=re.escape(".".join(path))):
        load_settings(**nested(path, value))


@settings(max_examples=300)
@given(path=st.sampled_from(FLOATS))
def test_every_float_setting_takes_its_default(path: tuple[str, ...]) -> None:
    default: Any = Settings()
    for key in path:
        default = getattr(default, key)
    assert load_settings(**nested(path, default)) == Settings()
