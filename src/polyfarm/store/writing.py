"""The write contract: what collectors and the stream hand their rows to, and what comes back.

Producers depend on ``Writer`` alone. ``BulkWriter`` (``polyfarm.store.writer``) stores a batch
with ``COPY``; ``DurableWriter`` (``polyfarm.store.durable``) puts the on-disk journal in front
of one for when the database is away. A test's fake writer satisfies the protocol by its
shape, without inheriting from either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from polyfarm.store.rejection import Problem, RejectionKind
from polyfarm.store.rows import TableSpec


@dataclass(frozen=True)
class RejectedRow:
    table: str
    problem: Problem
    row: Any

    @property
    def kind(self) -> RejectionKind:
        return self.problem.kind

    @property
    def reason(self) -> str:
        return self.problem.message


@dataclass
class WriteResult:
    table: str
    offered: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    journaled: int = 0  # held on disk until the database takes them (DurableWriter)
    dropped: int = 0  # lost because the journal was full; recorded as a feed gap


class Writer(Protocol):
    async def write(self, spec: TableSpec, rows: Sequence[Any]) -> WriteResult:
        """Validate ``rows`` and store the valid ones once each; refused rows are quarantined
        and reported in the result, never raised."""
        ...
