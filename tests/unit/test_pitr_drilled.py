"""A restore passes over backups whose last drill failed: the plan's base is the newest backup
that reaches the target and whose last drill did not fail, the same transactions are held, and
the note names what was skipped; a failed backup is used only when no other will do. And the
restore with no target and no archive (clone.point_in_time.choose_latest) does the same."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mysqlsts.backup.verify import record_verdict
from mysqlsts.clone.point_in_time import choose_latest
from mysqlsts.core.backup_verify import FAILED, OK, Verdict
from mysqlsts.core.pitr import BaseBackup, Target, plan_recovery, prefer_drilled
from mysqlsts.store.filestore import FileStore
from tests.unit.test_backup_list import write_backup
from tests.unit.test_pitr_plan import EPOCH, SERVER, History, backup

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def failed(b: BaseBackup) -> BaseBackup:
    return dataclasses.replace(b, drill_failed=True)


def test_prefer_drilled() -> None:
    assert prefer_drilled([]) == (0, "")
    assert prefer_drilled([("c", False), ("b", True)]) == (0, "")
    assert prefer_drilled([("c", True), ("b", True), ("a", False)]) == (
        2, "skipped backups c, b: last drill failed")
    assert prefer_drilled([("c", True), ("b", False)]) == (1, "skipped backup c: last drill failed")
    assert prefer_drilled([("c", True)]) == (0, "backup c's last drill failed; no other backup "
                                                "will do")


def test_a_failed_backup_is_passed_over_for_the_same_point() -> None:
    history = History([EPOCH + n for n in range(20)], [5, 10, 15], set())
    good, bad = backup("b1", 3, EPOCH + 3), backup("b2", 8, EPOCH + 8)
    blind = history.apply(Target(gtid=f"0-{SERVER}-12"), [good, bad])
    assert blind[0] == "b2"
    for target in (Target(gtid=f"0-{SERVER}-12"), Target(time=datetime.fromtimestamp(
            EPOCH + 14, UTC)), Target()):
        plan = plan_recovery([good, failed(bad)], history.records, target)
        assert plan.backup_id == "b1" and plan.note == "skipped backup b2: last drill failed"
        chosen, held = history.apply(target, [good, failed(bad)])
        assert held == history.apply(target, [good, bad])[1]  # the same transactions
    # A point before the failed backup: it does not reach it, nothing is skipped.
    plan = plan_recovery([good, failed(bad)], history.records,
                         Target(gtid=f"0-{SERVER}-5"))
    assert (plan.backup_id, plan.note) == ("b1", "")


def test_a_failed_backup_is_used_when_no_other_reaches_the_target() -> None:
    history = History([EPOCH + n for n in range(20)], [5, 10, 15], {1})  # 6..10 lost: a gap
    good, bad = backup("b1", 3, EPOCH + 3), backup("b2", 12, EPOCH + 12)
    plan = plan_recovery([good, failed(bad)], history.records,
                         Target(gtid=f"0-{SERVER}-14"))
    assert plan.backup_id == "b2"
    assert plan.note == "backup b2's last drill failed; no other backup will do"


def _verdict(store: FileStore, backup_id: str, result: str, hours: int = 0) -> None:
    """A drill's verdict, `hours` after the others, as the drill writes it."""
    record_verdict(store, Verdict(backup_id, result, "" if result == OK else "CHECK TABLE t "
                                  "failed: Corrupt", NOW + timedelta(hours=hours), 1.0, ""))


def test_the_latest_without_an_archive_skips_a_failed_newest(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    start = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    older = write_backup(store, start, "aaaaaa", "0-100-10")
    middle = write_backup(store, start + timedelta(days=1), "bbbbbb", "0-100-20")
    newest = write_backup(store, start + timedelta(days=2), "cccccc", "0-100-30")
    choice = choose_latest(store, None)
    assert choice.manifest.backup_id == newest and "skipped" not in choice.said
    _verdict(store, newest, FAILED)
    _verdict(store, middle, FAILED)
    _verdict(store, older, OK)
    choice = choose_latest(store, None)
    assert choice.manifest.backup_id == older and choice.plan is None
    assert choice.said == (f"restore: no target: backup {older} alone, at gtid=0-100-10 "
                           f"(skipped backups {newest}, {middle}: last drill failed) (the "
                           "store holds no binlog archive)")
    _verdict(store, older, FAILED, hours=1)  # a later drill of it failed too: the newest, said
    choice = choose_latest(store, None)
    assert choice.manifest.backup_id == newest
    assert f"(backup {newest}'s last drill failed; no other backup will do)" in choice.said
