"""Values pasted into SQL text (a `--bootstrap` script) and kept out of error messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mysqlsts.adapters.tools import redact, run_tool
from mysqlsts.core.sql import quote_literal
from mysqlsts.errors import MysqlstsError


def test_a_literal_escapes_what_would_end_or_cut_it() -> None:
    assert quote_literal("plain") == "'plain'"
    assert quote_literal("it's \\ a\nb\rc\0d\x1ae") == "'it\\'s \\\\ a\\nb\\rc\\0d\\Ze'"
    # No raw line break or NUL is left for a line-based reader to cut the statement at.
    assert not {"\n", "\r", "\0"} & set(quote_literal("x\ny\rz\0"))


SECRET = "pa'ss\\word\n2"


@pytest.mark.parametrize("said", [
    f"ERROR: 1064  You have an error in your SQL syntax near {quote_literal(SECRET)}",
    f"ERROR: 1064  syntax error near 'ALTER USER root IDENTIFIED BY {quote_literal(SECRET)[:6]}",
    f"[ERROR] bad password {SECRET}",
])
def test_a_failure_message_never_carries_the_secret(said: str) -> None:
    message = redact(f"setting the root password failed with exit code 1: {said}", (SECRET,))
    assert message.startswith("setting the root password failed with exit code 1: ")
    assert "pa" not in message.split(": ", 1)[1].replace("password", "")


def test_run_tool_redacts_what_the_tool_echoes() -> None:
    # As mariadbd --bootstrap answers a statement it cannot parse: it echoes the statement.
    script = ("import sys; sys.stderr.write(\"ERROR: 1064 syntax error near '\" "
              "+ sys.stdin.read() + \"' at line 1\\n\"); sys.exit(1)")
    statement = f"ALTER USER root IDENTIFIED BY {quote_literal(SECRET)};"  # one line
    with pytest.raises(MysqlstsError) as raised:
        run_tool([sys.executable, "-c", script], "echoing", stdin=statement.encode(),
                 secrets=(SECRET,))
    assert "echoing failed with exit code 1: ERROR" in str(raised.value)
    assert "pa'ss" not in str(raised.value) and "word" not in str(raised.value)
    unredacted = subprocess.run([sys.executable, "-c", script], input=statement, text=True,
                                capture_output=True, check=False).stderr
    assert "pa\\'ss" in unredacted  # the echo the redaction removed was there
