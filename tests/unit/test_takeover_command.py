"""`mysqlsts takeover` refuses bad input with one line and a non-zero exit, touching nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from mysqlsts.cli import cli


def test_refuses_a_window_shorter_than_the_isolation_fence() -> None:
    result = CliRunner().invoke(
        cli, ["takeover", "--once", "--node-down-after", "200", "--isolation-fence-after", "90"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "--node-down-after 200s is too short" in lines[0] and "(240s)" in lines[0]


def test_the_window_is_read_from_the_environment() -> None:
    result = CliRunner().invoke(cli, ["takeover", "--once"],
                                env={"MYSQLSTS_TAKEOVER_NODE_DOWN_AFTER": "120"})
    assert result.exit_code == 2
    assert "--node-down-after 120s is too short" in result.output


def test_no_cluster_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["takeover", "--once"],
        env={"KUBECONFIG": str(tmp_path / "missing"), "KUBERNETES_SERVICE_HOST": ""})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no cluster to talk to"), lines


def test_every_option_has_an_environment_variable() -> None:
    from mysqlsts.takeover.command import fence, takeover

    for command in (takeover, fence):
        for param in command.params:
            if param.param_type_name == "option":
                assert param.envvar, f"{command.name} {param.name} has no env var"


def test_metrics_match_docs_takeover_md() -> None:
    import re

    from mysqlsts.takeover.metrics import TakeoverMetrics

    doc = (Path(__file__).resolve().parents[2] / "docs" / "takeover.md").read_text()
    documented = dict(re.findall(r"^\|\s*`(mysqlsts_takeover_\w+)`\s*\|\s*(\w+)\s*\|", doc, re.M))
    text = TakeoverMetrics().render().decode()
    exported = dict(re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M))  # counters: with _total
    assert documented == exported
