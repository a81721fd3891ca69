"""How an error is told on one line."""

from __future__ import annotations

from polyfarm.errors import ConfigError, TransientSourceError, one_line


def test_our_errors_say_what_is_wrong_and_others_are_named() -> None:
    assert one_line(ConfigError("poll.prices_s must be positive")) == (
        "poll.prices_s must be positive"
    )
    told = one_line(KeyError("token_id"))
    assert told.startswith("unexpected KeyError: 'token_id'")
    assert "--log-level DEBUG" in told


def test_a_task_groups_errors_are_each_told() -> None:
    inner = ExceptionGroup("unhandled errors in a TaskGroup", [ValueError("bad window")])
    group = ExceptionGroup(
        "unhandled errors in a TaskGroup",
        [TransientSourceError("clob: 503 after 5 tries"), inner],
    )
    told = one_line(group)
    assert told.startswith("clob: 503 after 5 tries; unexpected ValueError: bad window")
    assert "TaskGroup" not in told
