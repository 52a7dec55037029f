"""Shared helpers of the CLI tests: invoke the Typer app, and check the one-line error contract."""

from typer.testing import CliRunner

from testbed.cli import app

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_line_error(res, message):
    """Bad input: exit code 2, the message, one line, no traceback."""
    assert res.exit_code == 2, res.output
    assert message in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
