"""The local set's records on disk: typed, and every way a file can be wrong is one clear error."""

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.core.records import RecordError
from mysqlsts.local.reconcile import Act
from mysqlsts.local.records import Phase, PodRecord, SupervisorPodState, SupervisorState
from mysqlsts.local.spec import SetLayout, SetSpec
from mysqlsts.local.store import pod_records, read_state, write_pod_record


def test_pod_record_round_trips_with_its_phase() -> None:
    record = PodRecord(pid=42, ordinal=1, phase=Phase.CLONE, reason=None, started_at=1.5,
                       updated_at=2.0)
    assert PodRecord.from_json(record.to_json()) == record
    assert '"phase": "clone"' in record.to_json()


def test_supervisor_state_round_trips_with_ordinal_keys() -> None:
    state = SupervisorState(
        supervisor_pid=7, desired=2, stopping=False, decision="steady: 2 pods ready",
        act=Act.STEADY, updated_at=3.0,
        pods={0: SupervisorPodState(alive=True, pid=11, ready=True),
              1: SupervisorPodState(alive=False, pid=None, ready=False, restarts=2, failures=1,
                                    last_end="killed", failed_at=2.5, back_off_until=4.0)},
    )
    assert SupervisorState.from_json(state.to_json()) == state
    assert SupervisorState.from_json(state.to_json()).pods[1].last_end == "killed"


def test_a_whole_number_is_a_float_field() -> None:
    assert PodRecord.from_json('{"pid": 1, "ordinal": 0, "phase": "init", "started_at": 5}'
                               ).started_at == 5.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"pid": 1, "ordinal": 0, "phase": "run\xffning"}', "pod.json is not UTF-8 text"),
        (b'{"pid": 1, "ordinal": 0, "pha', "pod.json is not valid JSON"),
        (b"[1, 2]", "pod.json holds a JSON list, not an object"),
        (b'{"pid": "1", "ordinal": 0, "phase": "init"}', "pod.json: pid is \"1\", not an integer"),
        (b'{"pid": true, "ordinal": 0, "phase": "init"}', "pid is true, not an integer"),
        (b'{"pid": 1, "ordinal": 0, "phase": "dancing"}', "phase is \"dancing\", not one of init"),
        (b'{"pid": 1, "phase": "init"}', "pod.json lacks the field ordinal"),
        (b'{"pid": 1, "ordinal": 0, "phase": "init", "x": 1}', "unknown field(s) x"),
        (b'{"pid": 1, "ordinal": 0, "phase": "init", "reason": 3}', "reason is 3, not a string"),
    ],
)
def test_a_bad_pod_record_is_one_error_naming_the_file(data: bytes, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        PodRecord.from_json(data, "pod.json")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("pods", "message"),
    [
        ('{"x": {"alive": true, "pid": 1, "ready": true}}', "has the key 'x', not an integer"),
        ('{"0": {"alive": "yes", "pid": 1, "ready": true}}', "pods.0: alive is \"yes\""),
        ('{"0": 5}', "pods.0 is 5, not an object"),
        ('[]', "pods is [], not an object"),
    ],
)
def test_a_bad_supervisor_state_is_one_error(pods: str, message: str) -> None:
    text = ('{"supervisor_pid": 1, "desired": 1, "stopping": false, "decision": "", '
            f'"act": "steady", "updated_at": 1, "pods": {pods}}}')
    with pytest.raises(RecordError, match="state.json") as caught:
        SupervisorState.from_json(text, "state.json")
    assert message in str(caught.value)


def test_spec_checks_its_types_and_its_own_rules() -> None:
    with pytest.raises(RecordError, match="replicas is \"3\", not an integer"):
        SetSpec.from_json('{"replicas": "3"}')
    with pytest.raises(RecordError, match="outside 1024..65535"):
        SetSpec.from_json('{"replicas": 3, "base_port": 80}')


def test_a_damaged_pod_record_is_a_warning_and_no_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    layout = SetLayout(tmp_path)
    paths = layout.pod("mysql-0")
    paths.root.mkdir(parents=True)
    paths.record.write_bytes(b'{"pid": 1, "ordinal": 0, "phase": "run\xffning"}')
    layout.pod("mysql-1").root.mkdir()
    write_pod_record(layout.pod("mysql-1"), PodRecord(pid=2, ordinal=1, phase=Phase.RUNNING))
    with caplog.at_level(logging.WARNING):
        assert pod_records(layout) == {1: PodRecord(pid=2, ordinal=1, phase=Phase.RUNNING)}
    assert f"ignoring a damaged pod record: {paths.record} is not UTF-8 text" in caplog.text


def test_a_damaged_supervisor_state_is_a_warning_and_no_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    layout = SetLayout(tmp_path)
    layout.state.write_text('{"supervisor_pid": 1, "desired": 1')  # truncated
    with caplog.at_level(logging.WARNING):
        assert read_state(layout) is None
    assert "state.json is not valid JSON" in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [(b'{"replicas": 3\xff}', "spec.json is not UTF-8 text"),
     (b'{"replicas": 3', "spec.json is not valid JSON"),
     (b'{"replicas": "three"}', "spec.json: replicas is \"three\", not an integer")],
)
def test_local_status_on_a_damaged_spec_is_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "spec.json").write_bytes(content)
    result = CliRunner().invoke(cli, ["local", "status", "--dir", str(tmp_path)])
    assert result.exit_code == 2, result.exception
    assert len(result.output.strip().splitlines()) == 1
    assert message in result.output


def test_local_status_on_a_spec_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "spec.json").mkdir()
    result = CliRunner().invoke(cli, ["local", "status", "--dir", str(tmp_path)])
    assert result.exit_code == 2, result.exception
    assert "Is a directory" in result.output
