import sys

import pytest

from mysqlsts.adapters.tools import last_line, run_tool
from mysqlsts.errors import CloneError, MysqlstsError


@pytest.mark.parametrize(("text", "skip", "line"), [
    ("", (), None),
    ("one\n  two  \n\n", (), "two"),
    ("[ERROR] Can't lock aria\n[ERROR] Aborting\n", ("Aborting",), "[ERROR] Can't lock aria"),
    ("[ERROR] Aborting\n", ("Aborting",), "[ERROR] Aborting"),  # nothing else to say
])
def test_last_line(text, skip, line):
    assert last_line(text, skip) == line


def test_a_failing_tool_is_reported_with_its_last_stderr_line():
    script = ("import sys; print('stdout noise'); "
              "sys.stderr.write('warming up\\nno space left\\n'); sys.exit(3)")
    with pytest.raises(CloneError, match=r"^extractor failed with exit code 3: no space left$"):
        run_tool([sys.executable, "-c", script], "extractor", error=CloneError)


def test_stdin_reaches_the_tool_and_success_is_silent():
    script = "import sys; sys.exit(0 if sys.stdin.read() == 'secret' else 1)"
    run_tool([sys.executable, "-c", script], "reader", stdin=b"secret")
    with pytest.raises(MysqlstsError, match="exit code 1: no output"):
        run_tool([sys.executable, "-c", script], "reader", stdin=b"other")
