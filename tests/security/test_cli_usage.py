"""Usage errors (unknown option, bad value, missing argument, unknown command) print click's usage
message and exit 2, as the docs promise, never "the run failed with NoSuchOption" and exit 1."""

from __future__ import annotations

import pytest

from dlpipe.cli.app import main


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["train", "data.csv", "--bogus"], "No such option: --bogus"),
        (["train", "data.csv", "--patience", "abc"], "Invalid value for '--patience'"),
        (["train"], "Missing argument 'DATA'"),
        (["predict"], "Missing argument 'BUNDLE"),
        (["nosuch"], "No such command 'nosuch'"),
        (["rl", "train", "CartPole-v1", "--steps", "many"], "Invalid value for '--steps'"),
    ],
)
def test_usage_errors_exit_2_with_the_usage_message(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert said.lower() in err.lower()
    assert "Usage:" in err or "Try 'dlpipe" in err
    assert "the run failed" not in err and "Traceback" not in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main(["version"]) == 0
    assert "Usage" in capsys.readouterr().out
