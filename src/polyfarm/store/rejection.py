"""Why validation refuses a row: a kind to count by, and a message for people.

The validators in ``polyfarm.store.rows`` return a ``Problem``; the writer quarantines the row
with its message and counts it under its ``label``. Labels are stable strings that metrics and
dashboards key on, so they come from the kind (and the offending column), never from the
wording of the message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RejectionKind(enum.Enum):
    """The value is the label a rejection is counted under, except for ``VALUE``: a bad value
    is counted under its column's name, so a bad price and a bad size are told apart."""

    TIMESTAMP = "timestamp"  # without a time zone, or too far in the future
    MISSING_KEY = "missing"  # no token or market id
    VALUE = "value"  # one column out of its range or not finite
    MALFORMED = "malformed"  # not a row of the table at all (wrong type, wrong shape)


@dataclass(frozen=True, slots=True)
class Problem:
    kind: RejectionKind
    message: str
    column: str | None = None  # the offending column of a ``VALUE`` problem

    @property
    def label(self) -> str:
        return self.column if self.column is not None else self.kind.value


def bad_value(column: str, message: str) -> Problem:
    return Problem(RejectionKind.VALUE, message, column)
