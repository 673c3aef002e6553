"""Store URLs: what is accepted, and one clear line for what is not."""

from __future__ import annotations

import pytest

from mysqlsts.core.store_url import StoreURL, parse_store_url
from mysqlsts.errors import ConfigError


@pytest.mark.parametrize(("text", "expected"), [
    ("s3://backups", StoreURL("s3", "backups", "")),
    ("s3://my-bucket.eu/sets/prod/", StoreURL("s3", "my-bucket.eu", "sets/prod")),
    ("file:///var/backups/set1", StoreURL("file", "", "var/backups/set1")),
    ("file://localhost/tmp/x", StoreURL("file", "", "tmp/x")),
])
def test_accepted(text: str, expected: StoreURL) -> None:
    assert parse_store_url(text) == expected
    assert parse_store_url(str(expected)) == expected  # printed back, parsed the same


@pytest.mark.parametrize(("text", "complaint"), [
    ("gs://bucket", "scheme must be s3:// or file://"),
    ("/var/backups", "scheme must be s3:// or file://"),
    ("s3://Bad_Bucket", "not a valid bucket name"),
    ("s3://b", "not a valid bucket name"),
    ("file://host/dir", "absolute path"),
    ("file:///", "needs a directory"),
    ("s3://bucket/a/../b", "plain"),
    ("s3://bucket/x?region=eu", "no query"),
])
def test_refused_in_one_line(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_store_url(text)
    assert complaint in str(caught.value)
    assert "\n" not in str(caught.value)


def test_credentials_in_the_url_are_refused_and_never_echoed() -> None:
    for text in ("s3://AKIAEXAMPLE:sup3rsecret@bucket/p", "gs://AKIAEXAMPLE:sup3rsecret@b"):
        with pytest.raises(ConfigError) as caught:
            parse_store_url(text)
        assert "sup3rsecret" not in str(caught.value)
        assert "AKIAEXAMPLE" not in str(caught.value)
