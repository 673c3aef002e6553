"""Backup names and manifests: ids sort by time, and an altered manifest is refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from mysqlsts.core.backup_layout import backup_id, backup_of, manifest_name, part_name
from mysqlsts.core.backup_manifest import (
    Manifest,
    ManifestError,
    Part,
    missing_or_wrong,
    parse_manifest,
    render_manifest,
)

START = datetime(2026, 12, 4, 18, 45, 53, tzinfo=UTC)
ID = backup_id(START, "0a1b2c")


def manifest(key_id: str = "") -> Manifest:
    parts = tuple(Part(part_name(ID, n), 100 + n, hashlib.sha256(bytes([n])).hexdigest())
                  for n in (1, 2))
    return Manifest(ID, "mysql", "mariadb", "10.11.6-MariaDB", "0-100-42",
                    START.isoformat(), (START + timedelta(minutes=3)).isoformat(), parts,
                    "zstd", key_id)


def test_ids_sort_by_time_and_name_nothing_secret() -> None:
    ids = [backup_id(START + timedelta(seconds=s), "ffffff" if s % 2 else "000000")
           for s in (0, 1, 59, 3600, 86400 * 40)]
    assert ids == sorted(ids)
    assert ID == "20261204T184553Z-0a1b2c"
    assert part_name(ID, 1) == f"backups/{ID}/part-000001"
    assert manifest_name(ID) == f"backups/{ID}/manifest.json"
    assert backup_of(part_name(ID, 7)) == ID
    assert backup_of("binlog/segments/x") is None
    with pytest.raises(ValueError):
        backup_id(START, "secret")


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_round_trip(key: bytes | None) -> None:
    m = manifest("key-1" if key else "")
    data = render_manifest(m, key)
    assert parse_manifest(data, ID, lambda key_id: key) == m
    assert m.size == 101 + 102


@pytest.mark.parametrize("edit", [
    lambda body: body.update(gtid="0-100-43"),
    lambda body: body["parts"][0].update(size=999),
    lambda body: body["parts"].pop(),
    lambda body: body.update(end_time="2026-12-05T00:00:00+00:00"),
])
def test_an_edited_manifest_is_refused(edit: object) -> None:
    body = json.loads(render_manifest(manifest(), None))
    assert callable(edit)
    edit(body)
    with pytest.raises(ManifestError, match="altered"):
        parse_manifest(json.dumps(body).encode(), ID)


def test_an_edit_with_a_recomputed_plain_checksum_is_refused_when_keyed() -> None:
    body = json.loads(render_manifest(manifest("key-1"), b"k" * 32))
    body["gtid"] = "0-100-43"
    body.pop("seal")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["seal"] = "sha256:" + hashlib.sha256(canonical).hexdigest()
    with pytest.raises(ManifestError, match="altered or written with another key"):
        parse_manifest(json.dumps(body).encode(), ID, lambda key_id: b"k" * 32)


def test_wrong_key_and_no_key() -> None:
    data = render_manifest(manifest("key-1"), b"k" * 32)
    with pytest.raises(ManifestError, match="another key"):
        parse_manifest(data, ID, lambda key_id: b"x" * 32)
    with pytest.raises(ManifestError, match="no key given"):
        parse_manifest(data, ID, lambda key_id: None)


def test_torn_and_foreign_manifests() -> None:
    data = render_manifest(manifest(), None)
    with pytest.raises(ManifestError, match="unreadable"):
        parse_manifest(data[: len(data) // 2], ID)
    with pytest.raises(ManifestError, match="names backup"):
        parse_manifest(data, backup_id(START, "ffffff"))


def test_invalid_manifests_are_not_written() -> None:
    with pytest.raises(ManifestError, match="no parts"):
        render_manifest(dataclasses.replace(manifest(), parts=()), None)
    with pytest.raises(ManifestError, match="ends before it starts"):
        render_manifest(dataclasses.replace(manifest(), end_time="2000-01-01T00:00:00+00:00"),
                        None)


def test_parts_checked_against_the_listing() -> None:
    m = manifest()
    assert missing_or_wrong(m, {part_name(ID, 1): 101, part_name(ID, 2): 102}) == []
    assert missing_or_wrong(m, {part_name(ID, 1): 100}) == [
        f"{part_name(ID, 1)} holds 100 bytes, the manifest says 101",
        f"{part_name(ID, 2)} is missing",
    ]
