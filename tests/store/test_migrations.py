from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from polyfarm.errors import ChecksumMismatchError, MigrationError
from polyfarm.store.dimensions import TokenRecord, upsert_tokens
from polyfarm.store.migrations import (
    Flavor,
    applied_migrations,
    default_migrations_dir,
    load_migrations,
    migrate,
    render,
)

from ..conftest import Server


def test_render_keeps_only_the_flavours_lines() -> None:
    sql = "A;\n--#if timescaledb\nB;\n--#else\nC;\n--#endif\n--#if plain\nD;\n--#endif\nE;"
    assert render(sql, Flavor.TIMESCALEDB).split() == ["A;", "B;", "E;"]
    assert render(sql, Flavor.PLAIN).split() == ["A;", "C;", "D;", "E;"]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("--#if timescaledb\nA;", "without --#endif"),
        ("--#endif", "without --#if"),
        ("--#else", "without --#if"),
        ("--#if oracle\nA;\n--#endif", "unknown flavour"),
    ],
)
def test_render_rejects_broken_blocks(sql: str, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        render(sql, Flavor.PLAIN, filename="x.sql")


def test_every_shipped_migration_renders_for_both_flavours() -> None:
    migrations = load_migrations(default_migrations_dir())
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for migration in migrations:
        for flavor in Flavor:
            render(migration.sql, flavor, filename=migration.filename)


async def test_migrate_empty_database_then_again_is_a_no_op(server: Server, empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        first = await migrate(conn)
        second = await migrate(conn)
        applied = await applied_migrations(conn)
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename IN ('markets', 'price_points', 'trade_fills', 'task_runs')"
        )
        views = await conn.fetchval(
            "SELECT count(*) FROM pg_views WHERE schemaname = 'public' "
            "AND viewname IN ('price_snapshots', 'trades', 'book_deltas', 'candles_1m')"
        )
    finally:
        await conn.close()
    shipped = load_migrations(default_migrations_dir())
    assert first.flavor.value == server.flavor
    assert first.applied == [m.filename for m in shipped]
    assert second.applied == []
    assert second.already_applied == len(shipped)
    assert [a.checksum for a in applied] == [m.checksum for m in shipped]
    assert {a.flavor for a in applied} == {server.flavor}
    assert tables == 4
    assert views == 4


async def test_edited_migration_is_refused_with_its_name(
    server: Server, empty_dsn: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), directory)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn, directory)
        edited = directory / "0002_dimensions.sql"
        edited.write_text(edited.read_text() + "\n-- a harmless looking edit\n")
        with pytest.raises(ChecksumMismatchError, match=r"0002_dimensions\.sql"):
            await migrate(conn, directory)
    finally:
        await conn.close()


async def test_a_new_file_is_applied_after_the_old_ones(
    server: Server, empty_dsn: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), directory)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn, directory)
        (directory / "0999_extra.sql").write_text("CREATE TABLE extra (id int);\n")
        report = await migrate(conn, directory)
        assert report.applied == ["0999_extra.sql"]
        assert await conn.fetchval("SELECT to_regclass('extra') IS NOT NULL")
    finally:
        await conn.close()


async def test_failed_migration_leaves_nothing_behind(
    server: Server, empty_dsn: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), directory)
    (directory / "0999_broken.sql").write_text("CREATE TABLE half (id int);\nSELECT nonsense(;\n")
    conn = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(MigrationError, match=r"0999_broken\.sql"):
            await migrate(conn, directory)
        assert not await conn.fetchval("SELECT to_regclass('half') IS NOT NULL")
        versions = [a.version for a in await applied_migrations(conn)]
        assert 999 not in versions
        assert len(versions) == len(load_migrations(default_migrations_dir()))
    finally:
        await conn.close()


async def test_two_concurrent_migrators_apply_each_file_once(
    server: Server, empty_dsn: str
) -> None:
    conns = [await asyncpg.connect(empty_dsn) for _ in range(2)]
    try:
        reports = await asyncio.gather(*(migrate(c) for c in conns))
        applied = await applied_migrations(conns[0])
    finally:
        for conn in conns:
            await conn.close()
    shipped = [m.filename for m in load_migrations(default_migrations_dir())]
    assert sorted(reports[0].applied + reports[1].applied) == sorted(shipped)
    assert len(applied) == len(shipped)


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"0001_slug\.sql"):
        load_migrations(tmp_path)


TIME_SERIES = (
    "price_points",
    "book_samples",
    "trade_fills",
    "book_changes",
    "feature_samples",
)


async def test_time_series_carry_the_same_indexes_on_both_flavours(pool: asyncpg.Pool) -> None:
    """Exactly the token-first unique B-tree and a BRIN on ts: no other index to keep up to
    date on every insert, whatever create_hypertable adds by default."""
    rows = await pool.fetch(
        "SELECT c.relname AS table_name, i.relname AS index_name, am.amname AS method, "
        "pg_get_indexdef(i.oid) AS definition "
        "FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relname = ANY($1::text[])",
        list(TIME_SERIES),
    )
    found = {(r["table_name"], r["index_name"], r["method"]) for r in rows}
    expected = {(table, f"{table}_ts_idx", "brin") for table in TIME_SERIES}
    expected |= {
        ("price_points", "price_points_token_ts_key", "btree"),
        ("book_samples", "book_samples_token_ts_key", "btree"),
        ("trade_fills", "trade_fills_token_ts_key", "btree"),
        ("book_changes", "book_changes_token_ts_seq_key", "btree"),
        ("feature_samples", "feature_samples_token_ts_key", "btree"),
    }
    assert found == expected, sorted(found ^ expected)


async def test_protocol_v2_ids_migration_keeps_a_populated_database_correct(
    server: Server, empty_dsn: str, tmp_path: Path
) -> None:
    """Rows stored before 0010 are v1 (their trading id is their CTF id). A v2 market that was
    stored under its CTF ids gets its position ids from the next scan, the old rows going."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in default_migrations_dir().glob("*.sql"):
        if int(path.name[:4]) < 10:
            shutil.copy(path, directory)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn, directory)
        for market_id, condition in (("1", "0x" + "a1" * 32), ("2", "0x" + "b2" * 32)):
            await conn.execute(
                "INSERT INTO markets (market_id, condition_id) VALUES ($1, $2)",
                market_id,
                condition,
            )
            await conn.executemany(
                "INSERT INTO tokens (token_id, market_id, condition_id, outcome_index) "
                "VALUES ($1, $2, $3, $4)",
                [(f"{market_id}{i}" * 30, market_id, condition, i) for i in (0, 1)],
            )
        shutil.copy(default_migrations_dir() / "0010_protocol_v2_ids.sql", directory)
        report = await migrate(conn, directory)
        assert report.applied == ["0010_protocol_v2_ids.sql"]
        markets = await conn.fetch("SELECT market_id, protocol_version FROM markets")
        assert {r["protocol_version"] for r in markets} == {"v1"}
        tokens = await conn.fetch("SELECT token_id, ctf_token_id, position_id FROM tokens")
        assert all(r["ctf_token_id"] == r["token_id"] for r in tokens)
        assert all(r["position_id"] is None for r in tokens)
        # Market 2 turns out to be v2: its trading ids are position ids.
        ctf = [f"2{i}" * 30 for i in (0, 1)]
        positions = [f"9{i}" * 30 for i in (0, 1)]
        records = [
            TokenRecord(p, "2", "0x" + "b2" * 32, None, i, ctf_token_id=c, position_id=p)
            for i, (c, p) in enumerate(zip(ctf, positions, strict=True))
        ]
        await upsert_tokens(conn, records)
        rows = await conn.fetch(
            "SELECT token_id, ctf_token_id, position_id, outcome_index FROM tokens "
            "WHERE market_id = '2' ORDER BY outcome_index"
        )
        assert [tuple(r) for r in rows] == [(p, c, p, i) for i, (c, p) in enumerate(
            zip(ctf, positions, strict=True))]  # fmt: skip
        assert await conn.fetchval("SELECT count(*) FROM tokens WHERE market_id = '1'") == 2
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE markets SET protocol_version = 'v3'")
    finally:
        await conn.close()
