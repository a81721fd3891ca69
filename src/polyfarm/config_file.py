"""Reading the YAML settings file, refusing hostile files before they cost anything.

A settings file is small and flat. Refused up front, each with one clear error: a file over
``MAX_BYTES``, bytes that are not UTF-8, nesting deeper than ``MAX_DEPTH`` (PyYAML composes
recursively, so a deep file is a ``RecursionError``), and aliases that expand to more than
``MAX_NODES`` nodes (a "billion laughs" file is a few hundred bytes that PyYAML builds as
shared references and the settings validation then walks as nearly a billion values).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from polyfarm.errors import ConfigError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 100_000


class _LimitExceeded(yaml.YAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that stops composing past ``MAX_DEPTH`` levels."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitExceeded(f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def expanded_size(node: Node, limit: int = MAX_NODES) -> int:
    """Nodes in the document with every alias expanded; stops counting past ``limit``.

    Aliases share node objects, so each distinct node's size is computed once (memo) and the
    walk stays linear in the file even when the expansion is exponential.
    """
    sizes: dict[int, int] = {}

    def size(current: Node) -> int:
        known = sizes.get(id(current))
        if known is not None:
            return known
        total = 1
        if isinstance(current, SequenceNode):
            children: list[Node] = list(current.value)
        elif isinstance(current, MappingNode):
            children = [part for pair in current.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[id(current)] = total
        return total

    return min(size(node), limit + 1)


def parse_yaml_text(text: str) -> Any:
    """One YAML document within the limits; raises ``yaml.YAMLError`` otherwise."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node) > MAX_NODES:
            raise _LimitExceeded(f"aliases expand to more than {MAX_NODES:,} values")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_config_bytes(path: Path) -> bytes:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block, /dev/zero never end
            raise ConfigError(f"config file {path} is not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_BYTES // 1024} KiB")
    return raw


def decode_config(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None


def read_yaml_config(path: Path) -> dict[str, Any]:
    """The settings mapping in ``path``; every problem is a ``ConfigError`` naming the file."""
    text = decode_config(read_config_bytes(path), path)
    try:
        loaded = parse_yaml_text(text)
    except _LimitExceeded as exc:
        raise ConfigError(f"config file {path} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    odd = [key for key in loaded if not isinstance(key, str)]
    if odd:
        raise ConfigError(f"config file {path} has keys that are not names: {odd!r}")
    return loaded
