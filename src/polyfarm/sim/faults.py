"""Fault injection: a parsed spec string, a seeded controller, and counters.

Spec grammar: comma-separated ``[scope:]kind=value``. Scopes: ``gamma``, ``clob``, ``data``,
``ws``; an unscoped entry applies everywhere it makes sense (``http_200_error`` only to the
Data API, where it was observed). Probabilities are per HTTP request or per WebSocket message,
from 0 to 1; every value is a finite number within its kind's range (``nan`` is refused).

    http_429 http_5xx timeout malformed_json truncated_json missing_fields extra_fields
    http_200_error                                        (HTTP, probability)
    ws_drop ws_stall ws_duplicate ws_out_of_order hash_mismatch ws_malformed
                                                          (WebSocket, probability)
    latency_ms   added latency per HTTP request (uniform 0.5x-1.5x)
    timeout_s    how long a ``timeout`` request hangs (default 30)
    retry_after_s  Retry-After sent with injected 429s (default 1)
    rate_limits  scale of the documented per-10 s limits: 0 off, 1 as documented

Fault randomness comes from the controller's own ``random.Random``, never the world's.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

HTTP_KINDS = frozenset(
    {"http_429", "http_5xx", "timeout", "malformed_json", "truncated_json",
     "missing_fields", "extra_fields", "http_200_error"}
)  # fmt: skip
WS_KINDS = frozenset(
    {"ws_drop", "ws_stall", "ws_duplicate", "ws_out_of_order", "hash_mismatch", "ws_malformed"}
)
PARAMS = frozenset({"latency_ms", "timeout_s", "retry_after_s", "rate_limits"})
SCOPES = frozenset({"gamma", "clob", "data", "ws"})
DEFAULTS = {"timeout_s": 30.0, "retry_after_s": 1.0}
# Upper bounds of the parameters (probabilities are bounded by 1).
PARAM_LIMITS = {"latency_ms": 60_000.0, "timeout_s": 3_600.0, "retry_after_s": 3_600.0,
                "rate_limits": 100.0}  # fmt: skip
DATA_ONLY = frozenset({"http_200_error"})


class FaultSpecError(ValueError):
    pass


def _parse_entry(item: str) -> tuple[tuple[str | None, str], float]:
    name, sep, raw = item.partition("=")
    if not sep:
        raise FaultSpecError(f"fault entry {item!r} needs kind=value")
    scope, _, kind = name.strip().rpartition(":")
    kind = kind.strip()
    if scope and scope not in SCOPES:
        raise FaultSpecError(f"unknown fault scope {scope!r} (known: {sorted(SCOPES)})")
    if kind not in HTTP_KINDS | WS_KINDS | PARAMS:
        raise FaultSpecError(f"unknown fault kind {kind!r}")
    try:
        value = float(raw)
    except ValueError as exc:
        raise FaultSpecError(f"fault value for {kind} is not a number: {raw!r}") from exc
    high = PARAM_LIMITS.get(kind, 1.0)
    if not 0 <= value <= high:  # NaN fails both comparisons
        raise FaultSpecError(f"fault {kind}={raw.strip()} out of range: from 0 to {high:g}")
    return (scope or None, kind), value


@dataclass(frozen=True, slots=True)
class FaultSpec:
    text: str = ""
    entries: Mapping[tuple[str | None, str], float] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        entries = dict(_parse_entry(item) for item in text.split(",") if item.strip())
        return cls(text.strip(), MappingProxyType(entries))

    def value(self, kind: str, scope: str | None) -> float:
        scoped = self.entries.get((scope, kind))
        if scoped is not None:
            return scoped
        if kind in DATA_ONLY and scope != "data":
            return 0.0
        return self.entries.get((None, kind), DEFAULTS.get(kind, 0.0))

    def has_ws_faults(self) -> bool:
        return any(kind in WS_KINDS and value > 0 for (_, kind), value in self.entries.items())

    def to_json(self) -> dict[str, object]:
        parsed = {
            f"{scope}:{kind}" if scope else kind: v for (scope, kind), v in self.entries.items()
        }
        return {"spec": self.text, "parsed": parsed}


class FaultController:
    """The live fault spec, its RNG and the count of every fault injected, by kind."""

    def __init__(self, spec: str, *, seed: int, rate_limits: bool = True) -> None:
        self._rng = random.Random(seed ^ 0xFA17)
        self._default_rate_scale = 1.0 if rate_limits else 0.0
        self.counts: Counter[str] = Counter()
        self.spec = FaultSpec.parse(spec)

    def set(self, spec: str) -> FaultSpec:
        """Replace the spec (raises ``FaultSpecError`` and keeps the old one when invalid)."""
        self.spec = FaultSpec.parse(spec)
        return self.spec

    def clear(self) -> None:
        self.spec = FaultSpec()

    def roll(self, kind: str, scope: str | None) -> bool:
        """Draw one fault decision; counts it when it fires."""
        fired = self.draw(kind, scope)
        if fired:
            self.counts[kind] += 1
        return fired

    def draw(self, kind: str, scope: str | None) -> bool:
        """Draw one fault decision without counting it: the caller counts the fault once it
        has really happened (``count``)."""
        chance = self.spec.value(kind, scope)
        return chance > 0 and self._rng.random() < chance

    def param(self, kind: str, scope: str | None = None) -> float:
        return self.spec.value(kind, scope)

    def uniform(self, low: float, high: float) -> float:
        return self._rng.uniform(low, high)

    def choice(self, options: list[str]) -> str:
        return self._rng.choice(options)

    def count(self, kind: str) -> None:
        self.counts[kind] += 1

    @property
    def ws_active(self) -> bool:
        return self.spec.has_ws_faults()

    @property
    def rate_limit_scale(self) -> float:
        scale = self.spec.entries.get((None, "rate_limits"))
        return self._default_rate_scale if scale is None else scale

    def snapshot(self) -> dict[str, object]:
        body = self.spec.to_json()
        body["rate_limit_scale"] = self.rate_limit_scale
        body["injected"] = dict(self.counts)
        return body
