"""DSN helpers of the store: switching the login user and masking passwords."""

from __future__ import annotations

import pytest

from polyfarm.store.database import dsn_with_user, redact_dsn


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "postgresql://postgres@/polyfarm?host=/var/lib/polyfarm/run&port=5432",
            "postgresql://polyfarm_reader@/polyfarm?host=/var/lib/polyfarm/run&port=5432",
        ),
        (
            "postgresql://owner:s3cret@db1:5432,db2/farm?sslmode=require&password=x&user=owner",
            "postgresql://polyfarm_reader@db1:5432,db2/farm?sslmode=require",
        ),
        ("postgres://db/farm", "postgres://polyfarm_reader@db/farm"),
        ("postgresql:///farm?host=/run/pg", "postgresql://polyfarm_reader@/farm?host=/run/pg"),
    ],
)
def test_dsn_with_user_swaps_the_user_and_drops_the_password(dsn: str, expected: str) -> None:
    assert dsn_with_user(dsn, "polyfarm_reader") == expected


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?password=p&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("postgresql://u@/db?host=/tmp/a b", "postgresql://u@/db?host=/tmp/a b"),
    ],
)
def test_redact_dsn_masks_passwords_only(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected
