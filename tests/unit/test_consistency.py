"""The consistency check's pure core: statements, chunk planning, the comparison, the summary,
the schedule, and the MySQL variant where it differs."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from mysqlsts.consistency.checksum_pass import PassResult
from mysqlsts.consistency.on_demand import PodResult, SetResult
from mysqlsts.core import consistency as c
from mysqlsts.core.version import parse_version

MARIADB = parse_version("10.11.19-MariaDB-0+deb12u1")
MYSQL = parse_version("8.4.3")
ITEMS = c.TableInfo("app", "items", ("id", "tag", "n"), "id")
NOKEY = c.TableInfo("app", "log", ("at", "line"), None)


# -- tables and session ---------------------------------------------------------------------


def test_the_checksum_table_is_keyed_by_chunk_and_holds_both_sides() -> None:
    create_db, checksums, passes, seed = c.table_statements("mysqlsts")
    assert create_db.sql == "CREATE DATABASE IF NOT EXISTS `mysqlsts`"
    assert checksums.sql.startswith("CREATE TABLE IF NOT EXISTS `mysqlsts`.`checksums` (")
    for column in ("db VARCHAR(64) NOT NULL", "tbl VARCHAR(64) NOT NULL", "this_crc BIGINT",
                   "this_cnt BIGINT", "master_crc BIGINT UNSIGNED NULL",
                   "master_cnt BIGINT UNSIGNED NULL", "lower_boundary TEXT",
                   "upper_boundary TEXT", "ts DATETIME(6) NOT NULL",
                   "PRIMARY KEY (db, tbl, chunk)", "ENGINE=InnoDB"):
        assert column in checksums.sql
    # No auto-increment: INSERT ... SELECT into it is safe for statement logging.
    assert "AUTO_INCREMENT" not in checksums.sql.upper()
    assert passes.sql.startswith("CREATE TABLE IF NOT EXISTS `mysqlsts`.`checksum_pass` (")
    assert seed.sql == "INSERT IGNORE INTO `mysqlsts`.`checksum_pass` (id) VALUES (1)"


def test_identifiers_are_quoted() -> None:
    statements = c.table_statements("my`db")
    assert statements[0].sql == "CREATE DATABASE IF NOT EXISTS `my``db`"
    odd = c.TableInfo("we`ird", "t`1", ("a`b",), "a`b")
    insert = c.chunk_statements("mysqlsts", odd, c.Chunk(2, 5, 9))[1].sql
    assert "FROM `we``ird`.`t``1` FORCE INDEX (PRIMARY) WHERE `a``b` >= %s AND `a``b` < %s" in (
        insert)
    assert "CAST(`a``b` AS BINARY)" in insert


def test_the_session_logs_statements_in_repeatable_read_with_short_lock_waits() -> None:
    sql = [s.sql for s in c.session_statements()]
    assert "SET SESSION binlog_format = 'STATEMENT'" in sql
    assert "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ" in sql
    assert "SET SESSION innodb_lock_wait_timeout = 1" in sql
    assert "SET SESSION lock_wait_timeout = 5" in sql
    assert "SET SESSION time_zone = '+00:00'" in sql


def test_user_schemas_only() -> None:
    columns = c.columns_statement("mysqlsts")
    assert set(columns.args) == {"BASE TABLE", "SYSTEM VERSIONED", "mysql", "sys",
                                 "information_schema", "performance_schema", "mysqlsts"}
    assert columns.sql.count("%s") == len(columns.args)
    keys = c.keys_statement("tooldb")
    assert "tooldb" in keys.args and "INDEX_NAME = 'PRIMARY' AND SEQ_IN_INDEX = 1" in keys.sql
    assert keys.sql.count("%s") == len(keys.args)


def test_tables_from_information_schema_rows() -> None:
    columns = [
        {"db": "app", "tbl": "items", "col": "id"}, {"db": "app", "tbl": "items", "col": "tag"},
        {"db": "app", "tbl": "log", "col": "line"}, {"db": "a", "tbl": "z", "col": "k"},
    ]
    keys = [{"db": "app", "tbl": "items", "col": "id"}, {"db": "a", "tbl": "z", "col": "k"}]
    assert c.tables_from(columns, keys) == [
        c.TableInfo("a", "z", ("k",), "k"),
        c.TableInfo("app", "items", ("id", "tag"), "id"),
        c.TableInfo("app", "log", ("line",), None),
    ]
    assert str(c.tables_from(columns, keys)[1]) == "app.items"


# -- chunks ---------------------------------------------------------------------------------


def list_boundary(keys: list[Any], order: Callable[[Any], Any] = lambda k: k,
                  ) -> tuple[c.Boundary, list[tuple[Any, int]]]:
    """`boundary_statement`'s answer over `keys`, compared as `order` (a collation) says."""
    ordered = sorted(keys, key=order)
    asked: list[tuple[Any, int]] = []

    def boundary(lower: Any, offset: int) -> Any:
        asked.append((lower, offset))
        after = [k for k in ordered if lower is None or order(k) > order(lower)]
        return after[offset] if offset < len(after) else None

    return boundary, asked


def members(keys: list[Any], chunk: c.Chunk, order: Callable[[Any], Any] = lambda k: k,
            ) -> list[Any]:
    return [k for k in keys
            if (chunk.lower is None or order(k) >= order(chunk.lower))
            and (chunk.upper is None or order(k) < order(chunk.upper))]


def test_chunks_of_a_unique_key_hold_about_n_rows_and_cover_every_key() -> None:
    keys = list(range(1, 2501))
    boundary, asked = list_boundary(keys)
    chunks = list(c.plan_chunks(ITEMS, 1000, boundary))
    assert chunks == [c.Chunk(1, None, 1001), c.Chunk(2, 1001, 2001), c.Chunk(3, 2001, None)]
    assert [len(members(keys, chunk)) for chunk in chunks] == [1000, 1000, 500]
    assert asked == [(None, 1000), (1001, 999), (2001, 999)]


@pytest.mark.parametrize("rows", [1, 2, 3, 7, 1000])
def test_repeated_and_collation_equal_keys_never_stall_and_every_key_is_in_one_chunk(
    rows: int,
) -> None:
    # The first column of a composite key repeats; 'a' and 'A' are equal under a _ci collation.
    keys = ["a", "A", "a", "b", "b", "b", "B", "c", "d", "d", "D", "e"] * 3
    order = str.lower
    boundary, _ = list_boundary(keys, order)
    chunks = list(c.plan_chunks(c.TableInfo("app", "t", ("k", "n"), "k"), rows, boundary))
    assert len(chunks) <= len(keys) + 1
    assert chunks[0].lower is None and chunks[-1].upper is None
    assert [chunk.number for chunk in chunks] == list(range(1, len(chunks) + 1))
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert before.upper == after.lower  # contiguous ranges
    for key in set(keys):
        assert sum(key in members(keys, chunk, order) for chunk in chunks) == 1, key


def test_a_table_without_a_primary_key_or_without_rows_is_one_chunk() -> None:
    assert list(c.plan_chunks(NOKEY, 1000, lambda lower, offset: pytest.fail("no look-up"))) == [
        c.Chunk(1)]
    empty, _ = list_boundary([])
    assert list(c.plan_chunks(ITEMS, 1000, empty)) == [c.Chunk(1)]
    where = c.chunk_statements("mysqlsts", NOKEY, c.Chunk(1))[1].sql
    assert where.endswith("FROM `app`.`log`")


def test_a_key_that_reads_back_equal_to_its_lower_bound_ends_the_walk() -> None:
    # A FLOAT key read back rounded: `k > 1.1` finds the row shown as 1.1 again.
    answers = iter([1.1, 1.1])
    chunks = list(c.plan_chunks(ITEMS, 1, lambda lower, offset: next(answers)))
    assert chunks == [c.Chunk(1, None, 1.1), c.Chunk(2, 1.1, None)]


def test_boundary_statements() -> None:
    first = c.boundary_statement(ITEMS, None, 1000)
    assert first.sql == ("SELECT `id` AS k FROM `app`.`items` FORCE INDEX (PRIMARY) "
                         "ORDER BY `id` LIMIT 1 OFFSET 1000")
    assert first.args == ()
    later = c.boundary_statement(ITEMS, "x'y", 999)
    assert later.sql == ("SELECT `id` AS k FROM `app`.`items` FORCE INDEX (PRIMARY) "
                         "WHERE `id` > %s ORDER BY `id` LIMIT 1 OFFSET 999")
    assert later.args == ("x'y",)  # bound, escaped by the driver into the statement's text


# -- the chunk's statements -----------------------------------------------------------------


def test_a_chunk_is_delete_then_insert_select_then_the_primarys_values() -> None:
    chunk = c.Chunk(3, 2001, 3001)
    delete, insert = c.chunk_statements("mysqlsts", ITEMS, chunk)
    assert delete.sql == ("DELETE FROM `mysqlsts`.`checksums` "
                          "WHERE db = %s AND tbl = %s AND chunk = %s")
    assert delete.args == ("app", "items", 3)
    # INSERT ... SELECT, never REPLACE ... SELECT (unsafe for statement logging).
    assert insert.sql.startswith("INSERT INTO `mysqlsts`.`checksums` (db, tbl, chunk, "
                                 "chunk_index, lower_boundary, upper_boundary, this_cnt, "
                                 "this_crc, ts) SELECT %s, %s, %s, %s, %s, %s, COUNT(*), ")
    assert "REPLACE" not in insert.sql
    assert insert.sql.endswith(", UTC_TIMESTAMP(6) FROM `app`.`items` FORCE INDEX (PRIMARY) "
                               "WHERE `id` >= %s AND `id` < %s")
    assert insert.args == ("app", "items", 3, "id", "2001", "3001", 2001, 3001)
    assert insert.sql.count("%s") == len(insert.args)
    first = c.chunk_statements("mysqlsts", ITEMS, c.Chunk(1, None, 1001))[1]
    assert first.sql.endswith("WHERE `id` < %s") and first.args[-1] == 1001
    last = c.chunk_statements("mysqlsts", ITEMS, c.Chunk(4, 3001, None))[1]
    assert last.sql.endswith("WHERE `id` >= %s") and last.args[-1] == 3001
    read_back = c.read_back_statement("mysqlsts", ITEMS, chunk)
    assert read_back.sql.startswith("SELECT this_crc, this_cnt FROM `mysqlsts`.`checksums`")
    master = c.master_statement("mysqlsts", ITEMS, chunk, 2**64 - 1, 1000, 0.0123456789)
    assert master.sql == ("UPDATE `mysqlsts`.`checksums` SET master_crc = %s, master_cnt = %s, "
                          "chunk_time = %s WHERE db = %s AND tbl = %s AND chunk = %s")
    assert master.args == (2**64 - 1, 1000, 0.012346, "app", "items", 3)


def test_the_row_checksum_is_pt_table_checksums_64_bit_md5() -> None:
    expr = c.crc_expression(("id", "tag"))
    assert expr == (
        "BIT_XOR(CAST(CONV(LEFT(MD5(CONCAT_WS('#', CAST(`id` AS BINARY), CAST(`tag` AS BINARY), "
        "CONCAT(ISNULL(`id`), ISNULL(`tag`)))), 16), 16, 10) AS UNSIGNED))"
    )


@pytest.mark.parametrize(("value", "text"), [
    (None, None), (42, "42"), ("abc", "abc"), (b"\x00\xff", "0x00ff"),
    (Decimal("1.50"), "1.50"),
    (datetime.datetime(2024, 5, 1, 10, 0, 0, 123), "2024-05-01 10:00:00.000123"),
    (datetime.date(2024, 5, 1), "2024-05-01"),
])
def test_boundaries_as_text(value: Any, text: str | None) -> None:
    assert c.boundary_text(value) == text


def test_a_finished_pass_drops_stale_rows_then_records_itself() -> None:
    started = datetime.datetime(2024, 5, 1, 10, 0, 0)
    assert c.pass_started_statement("mysqlsts", started).args == (started,)
    drop, record = c.pass_finished_statements("mysqlsts", started, 3, 12, 1)
    assert drop.sql == "DELETE FROM `mysqlsts`.`checksums` WHERE ts < %s"
    assert drop.args == (started,)
    assert "finished = UTC_TIMESTAMP(6)" in record.sql and record.args == (3, 12, 1)


# -- comparison and summary -----------------------------------------------------------------


def row(this: tuple[int | None, int | None], master: tuple[int | None, int | None],
        ) -> dict[str, Any]:
    return {"db": "app", "tbl": "items", "chunk": 1, "this_cnt": this[0], "this_crc": this[1],
            "master_cnt": master[0], "master_crc": master[1]}


@pytest.mark.parametrize(("this", "master", "diverged"), [
    ((10, 123), (10, 123), False),
    ((9, 123), (10, 123), True),  # a row missing
    ((10, 124), (10, 123), True),  # a row changed
    ((10, 123), (None, None), True),  # only one side has a checksum
    ((None, None), (None, None), False),  # as pt-table-checksum: NULL on both sides
    ((0, 0), (0, 0), False),  # an empty chunk
])
def test_diverged(this: tuple[int | None, int | None], master: tuple[int | None, int | None],
                  diverged: bool) -> None:
    assert c.ChunkRow.of(row(this, master)).diverged is diverged


def test_summary_of_a_diverged_replica_names_tables_never_boundaries() -> None:
    finished = datetime.datetime(2024, 5, 1, 10, 0, 0)
    rows = [row((9, 1), (10, 1)), {**row((5, 2), (5, 3)), "tbl": "orders", "chunk": 4},
            row((10, 1), (10, 1))]  # a row the query returned that does not differ is dropped
    summary = c.summarize(1_714_557_700.0, {"started": finished, "finished": finished},
                          {"checked": 12, "diverged": Decimal(2)}, rows)
    assert summary.last_pass == 1_714_557_600.0
    assert (summary.checked, summary.diverged) == (12, 2)
    assert summary.diverged_tables == ["app.items", "app.orders"]
    assert summary.sentence() == "12 chunks checked, 2 diverged: app.items, app.orders"
    document = summary.as_dict()
    assert document["last_pass"] == "2024-05-01T10:00:00.000+00:00"
    assert document["first_diverged"][0] == {"db": "app", "table": "items", "chunk": 1,
                                             "this_cnt": 9, "master_cnt": 10}
    assert "boundary" not in str(document)


def test_summary_before_any_pass() -> None:
    summary = c.summarize(1.0, None, {"checked": 0, "diverged": None}, [])
    assert (summary.last_pass, summary.checked, summary.diverged) == (None, 0, 0)
    assert summary.sentence() == "0 chunks checked, 0 diverged (no completed pass here yet)"


def test_the_summary_reads_with_pt_table_checksums_comparison() -> None:
    record, counts, diverged = c.summary_statements("mysqlsts")
    assert record.sql == ("SELECT started, finished FROM `mysqlsts`.`checksum_pass` "
                          "WHERE id = 1")
    assert c.DIVERGED_SQL in counts.sql and c.DIVERGED_SQL in diverged.sql
    assert diverged.sql.endswith(f"ORDER BY db, tbl, chunk LIMIT {c.SUMMARY_CHUNKS}")


# -- schedule, pace, positions ----------------------------------------------------------------


def test_pass_schedule() -> None:
    assert c.pass_due(None, 100.0, 86400) is True  # none completed yet: now
    assert c.pass_due(100.0, 100.0 + 86399, 86400) is False
    assert c.pass_due(100.0, 100.0 + 86400, 86400) is True
    assert c.pass_due(None, 100.0, 0) is False  # disabled


def test_duty_cycle_pause() -> None:
    assert c.pause_after(1.0, 0.25) == pytest.approx(3.0)  # busy 1 s of every 4
    assert c.pause_after(0.2, 0.5) == pytest.approx(0.2)
    assert c.pause_after(5.0, 1.0) == 0.0


def test_positions_and_waits_per_flavor() -> None:
    assert c.position_statement(MARIADB).sql == "SELECT @@global.gtid_binlog_pos AS position"
    assert c.position_statement(MYSQL).sql == "SELECT @@global.gtid_executed AS position"
    maria = c.wait_statement(MARIADB, "0-100-42", 300)
    assert maria.sql == "SELECT MASTER_GTID_WAIT(%s, %s) AS waited"
    assert maria.args == ("0-100-42", 300.0)
    mysql = c.wait_statement(MYSQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", 300)
    assert mysql.sql == "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS waited"


# -- the on-demand report -------------------------------------------------------------------


def test_set_result_lines_and_exit_code() -> None:
    clean = c.Summary(read_at=1.0, last_pass=1.0, pass_started=0.5, checked=12, diverged=0)
    bad = c.summarize(1.0, {"started": None, "finished": None}, {"checked": 12, "diverged": 1},
                      [row((9, 1), (10, 1))])
    check = PassResult(tables=3, chunks=12, skipped=0, seconds=4.0, busy_seconds=1.0)
    assert check.sentence() == "3 tables, 12 chunks in 4.0s (busy 1.0s, 25%), 0 skipped"
    ok = SetResult(check, (PodResult("mysql-0", clean), PodResult("mysql-1", clean)))
    assert ok.exit_code == 0
    assert ok.lines() == ["mysql-0: 12 chunks checked, 0 diverged",
                          "mysql-1: 12 chunks checked, 0 diverged"]
    diverged = SetResult(check, (PodResult("mysql-0", clean), PodResult("mysql-1", bad)))
    assert diverged.exit_code == 1
    assert diverged.lines()[1].startswith("mysql-1: 12 chunks checked, 1 diverged: app.items")
    unread = SetResult(check, (PodResult("mysql-0", clean),
                               PodResult("mysql-2", error="did not apply the pass")))
    assert unread.exit_code == 1
    assert unread.lines()[1] == "mysql-2: not checked: did not apply the pass"
    stopped = PassResult(3, 5, 0, 2.0, 0.5, stopped="stop requested")
    assert stopped.sentence().startswith("stopped after 3 tables, 5 chunks")


# -- the commands' refusals ----------------------------------------------------------------


def test_the_cluster_command_refuses_a_replica_and_a_missing_secret(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from mysqlsts.cli import cli

    result = CliRunner().invoke(cli, ["checksum"], env={"POD_NAME": "mysql-2"})
    assert result.exit_code == 2
    assert "mysql-2 is a replica: run `mysqlsts checksum` in the primary's sidecar" in (
        result.output)
    missing = tmp_path / "nope"
    result = CliRunner().invoke(cli, ["checksum"], env={
        "POD_NAME": "mysql-0", "MYSQLSTS_ROOT_PASSWORD_FILE": str(missing)})
    assert result.exit_code == 2
    assert f"cannot read root password file {missing}" in result.output
    assert "Traceback" not in result.output
