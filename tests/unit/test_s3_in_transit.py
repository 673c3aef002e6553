"""Which failed S3 requests put_new retries: those cut off in transit, never an answer. The
texts are obstore 0.12's, recorded against moto behind tests/faultproxy.py."""

import pytest

pytest.importorskip("obstore")

from mysqlsts.store.s3store import in_transit  # noqa: E402


def _debug(inner: str) -> str:
    return ("Generic S3 error: Error performing PUT http://127.0.0.1:1/b/p in 1.8ms - HTTP "
            "error: error sending request\n\nDebug source:\nGeneric {\n    store: \"S3\",\n"
            "    source: RetryError(\n        RetryErrorImpl {\n            method: PUT,\n"
            f"            retries: 0,\n            inner: {inner},\n        }},\n    ),\n}}")


RESET = _debug("Http(\n                HttpError {\n                    kind: Interrupted,\n"
               "                    source: reqwest::Error { kind: Request },\n"
               "                },\n            )")
TIMEOUT = _debug("Http(\n                HttpError {\n                    kind: Timeout,\n"
                 "                    source: reqwest::Error { kind: Request, source: TimedOut "
                 "},\n                },\n            )")
STATUS_503 = _debug("Status {\n                status: 503,\n                body: None,\n"
                    "            }")
STATUS_412 = _debug("Status {\n                status: 412,\n                body: Some(\"x\"),\n"
                    "            }")
# A status answer whose body happens to quote the words: still an answer.
QUOTED = _debug("Status {\n status: 500,\n body: Some(\"HttpError { kind: Timeout }\"),\n }")


class _Failed(Exception):
    pass


@pytest.mark.parametrize(("error", "retried"), [
    (_Failed(RESET), True),
    (_Failed(TIMEOUT), True),
    (ConnectionResetError(104, "Connection reset by peer"), True),
    (BrokenPipeError(32, "Broken pipe"), True),
    (TimeoutError("timed out"), True),
    (_Failed(STATUS_503), False),
    (_Failed(STATUS_412), False),
    (PermissionError(13, "Permission denied"), False),
])
def test_in_transit(error, retried):
    assert in_transit(error) is retried


def test_a_body_quoting_the_words_is_an_answer_not_a_cut():
    assert in_transit(_Failed(QUOTED)) is False
