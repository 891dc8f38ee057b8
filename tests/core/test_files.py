"""Run-folder helpers: atomic folders leave nothing half-written; a failing report only warns."""

import pytest

from dlpipe.core.errors import DlpipeWarning
from dlpipe.core.files import atomic_dir, report_or_warn


def test_atomic_dir_leaves_nothing_when_the_body_fails(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "run") as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(tmp_path / "run") as tmp:
        (tmp / "whole.txt").write_text("x")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        ".dlpipe",
        "whole.txt",
    ]  # + dlpipe's marker


def test_a_failing_report_warns_with_the_rebuild_command(tmp_path):
    def broken() -> None:
        raise ValueError("no figures")

    with pytest.warns(
        DlpipeWarning,
        match=r"saved but its report could not be built \(ValueError: no figures\); rebuild it with `dlpipe report .*run`",
    ):
        report_or_warn(broken, tmp_path / "run")
    report_or_warn(
        lambda: None, tmp_path / "run"
    )  # a working report: no warning (warnings are errors here)
