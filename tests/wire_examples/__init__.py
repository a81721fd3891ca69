"""Payloads as Polymarket sends them, one JSON file each, grouped by kind (the directory).

Recorded payloads and composites built from recorded parts; ``README.md`` says where each came
from. The client tests parse every one; the simulator tests compare the simulator's answers
with them. ``fields.json`` lists the field names documented per payload kind beyond the keys
of an example.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class WireExample:
    kind: str  # the directory: gamma_market, ws_message, data_trades_v2, …
    name: str  # the file name without ``.json``
    value: Any

    @property
    def raw(self) -> bytes:
        return orjson.dumps(self.value)

    @property
    def origin(self) -> str:
        return f"{self.kind}/{self.name}"


@cache
def examples() -> tuple[WireExample, ...]:
    found = [
        WireExample(path.parent.name, path.stem, orjson.loads(path.read_bytes()))
        for path in sorted(ROOT.glob("*/*.json"))
    ]
    return tuple(found)


def of_kind(kind: str) -> list[WireExample]:
    return [example for example in examples() if example.kind == kind]


def example(kind: str, name: str) -> WireExample:
    return next(e for e in examples() if e.kind == kind and e.name == name)


@cache
def documented_fields() -> dict[str, frozenset[str]]:
    loaded = orjson.loads((ROOT / "fields.json").read_bytes())
    return {kind: frozenset(names) for kind, names in loaded.items() if not kind.startswith("_")}
