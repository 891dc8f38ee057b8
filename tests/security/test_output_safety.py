"""Never lose a user's files (issue #15 items 1, 2, 8 and part of 7).

`--out` replaces only a folder dlpipe wrote itself (its `.dlpipe` marker) and only with --overwrite;
one writer per output path (an OS lock naming the holder's process id); a killed writer's leftovers
are cleaned by lock, with a warning; damaged checkpoints and unwritable outputs are one sentence.
Note: these tests run as root, which ignores a chmod'd read-only folder, so "cannot write" is tested
with a path under a regular file (ENOTDIR) and under /sys (read-only even for root).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.errors import DlpipeWarning, InvalidInputError, RunFailedError
from dlpipe.core.files import OutputExistsError, OutputPathError, atomic_dir, read_marker
from dlpipe.core.locking import OutputBusyError, OutputLock
from dlpipe.training.callbacks import Callback
from dlpipe.training.checkpoint import CHECKPOINT_FILE

TRAIN = ["-t", "y", "--epochs", "2", "--quiet", "--no-report"]
FAST = {"epochs": 2, "progress": "quiet", "report": False}


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": x[:, 2],
            "y": np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"),
        }
    )


def _csv(path: str | Path = "data.csv") -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    _frame().to_csv(p, index=False)
    return p


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (and root itself) with its bytes (None for folders)."""
    out: dict[str, bytes | None] = {}
    for p in sorted([root, *root.rglob("*")]) if root.exists() else []:
        out[str(p.relative_to(root.parent))] = p.read_bytes() if p.is_file() else None
    return out


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(args)
    return rc, capsys.readouterr().err


def _run_warned(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``main`` with warnings shown as the CLI shows them (``warning: ...`` on stderr), not raised by pytest."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", DlpipeWarning)
        return _run(args, capsys)


def _one_sentence(err: str) -> str:
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------- item 1: --out deletes what it names
def test_out_naming_the_data_folder_is_refused_and_the_data_stays(tmp_path, capsys):
    _csv("proj/data.csv")
    before = _snapshot(tmp_path / "proj")
    rc, err = _run(["train", "proj/data.csv", *TRAIN, "-o", "proj"], capsys)
    assert rc == 2
    assert "`--out` 'proj' holds the data 'proj/data.csv'" in _one_sentence(err)
    assert _snapshot(tmp_path / "proj") == before
    assert sorted(os.listdir(tmp_path)) == [
        "proj"
    ]  # no lock file, no temporary folder, no checkpoint


def test_out_naming_a_folder_of_earlier_runs_is_refused(tmp_path, capsys):
    _csv()
    assert main(["train", "data.csv", *TRAIN, "-o", "runs/first"]) == 0
    (tmp_path / "runs" / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path / "runs")
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "runs"], capsys)
    assert rc == 2
    assert (
        "`--out` 'runs' is a folder that dlpipe did not write (it holds 2 entries: 'first', 'notes.txt'); "
        "dlpipe replaces only its own folders, so pass the name of a new or empty folder."
    ) in _one_sentence(err)
    assert _snapshot(tmp_path / "runs") == before


def test_out_naming_a_file_is_refused_and_the_file_is_not_moved(tmp_path, capsys):
    _csv()
    (tmp_path / "results.txt").write_text("precious")
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "results.txt"], capsys)
    assert rc == 2
    assert (
        "`--out` 'results.txt' is an existing file, not a folder, and dlpipe never replaces it; "
        "pass the name of a new folder, such as 'runs/my-run'."
    ) in _one_sentence(err)
    assert (tmp_path / "results.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "results.txt"]  # no .results.txt.old-*


@pytest.mark.parametrize("out", [".", "..", "/", "runs/.."])
def test_out_naming_here_a_parent_or_the_root_is_a_sentence(tmp_path, capsys, out):
    _csv()
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", out], capsys)
    assert rc == 2
    assert (
        f"`--out` {out!r} names the current folder, a parent folder or the root, which dlpipe never writes into or replaces"
        in _one_sentence(err)
    )
    assert "empty name" not in err
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]


def test_an_empty_folder_is_used(tmp_path, capsys):
    _csv()
    (tmp_path / "empty").mkdir()
    assert main(["train", "data.csv", *TRAIN, "-o", "empty"]) == 0
    assert (tmp_path / "empty" / "metrics.json").is_file()
    assert read_marker(tmp_path / "empty") == {
        "format": "dlpipe-folder",
        "kind": "run",
        "dlpipe": dl.__version__,
    }
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "empty"]


def test_a_finished_run_is_replaced_only_with_overwrite(tmp_path, capsys):
    # also item 2: a second run a few seconds after a finished one is refused with "exists", not "interrupted"
    _csv()
    assert main(["train", "data.csv", *TRAIN, "-o", "runs/x"]) == 0
    before = _snapshot(tmp_path / "runs")
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "runs/x"], capsys)
    assert rc == 2
    assert (
        "`--out` 'runs/x' already exists (a dlpipe run folder); pass `--overwrite` "
        "to replace it, or pick another path."
    ) in _one_sentence(err)
    assert "interrupted" not in err
    assert _snapshot(tmp_path / "runs") == before
    assert main(["train", "data.csv", *TRAIN, "--seed", "3", "-o", "runs/x", "--overwrite"]) == 0
    assert (tmp_path / "runs" / "x" / "metrics.json").read_bytes() != before["runs/x/metrics.json"]
    assert sorted(os.listdir(tmp_path / "runs")) == ["x"]  # no .old-*, no lock file, no .partial


def test_overwrite_never_replaces_a_folder_dlpipe_did_not_write(tmp_path, capsys):
    _csv()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "mine", "--overwrite"], capsys)
    assert rc == 2 and "is a folder that dlpipe did not write" in _one_sentence(err)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    assert sorted(os.listdir(tmp_path / "mine")) == ["thesis.tex"]


def test_overwrite_replaces_only_a_folder_of_the_same_kind(tmp_path, capsys):
    _csv()
    assert main(["train", "data.csv", *TRAIN, "-o", "runs/x"]) == 0
    before = _snapshot(tmp_path / "runs")
    rc, err = _run(
        ["ensemble", "runs/x/bundle", "runs/x/bundle", "-o", "runs/x", "--overwrite"], capsys
    )
    assert rc == 2
    assert (
        "`--out` 'runs/x' is a dlpipe run folder, not an ensemble folder; dlpipe replaces a folder only with one of the same kind, "
        "so pass another path."
    ) in _one_sentence(err)
    assert _snapshot(tmp_path / "runs") == before


def test_a_symbolic_link_is_never_replaced(tmp_path, capsys):
    _csv()
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "link", "--overwrite"], capsys)
    assert (
        rc == 2
        and "`--out` 'link' is a symbolic link, which dlpipe never replaces" in _one_sentence(err)
    )
    assert (tmp_path / "link").is_symlink() and not any((tmp_path / "target").iterdir())


def test_the_output_is_checked_before_the_data_is_read_or_trained(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")

    def never(*_a, **_k):
        raise AssertionError("the data was read before the output path was checked")

    monkeypatch.setattr(sys.modules["dlpipe.pipeline.train"], "resolve_dataset", never)
    with pytest.raises(
        OutputExistsError, match=r"^`out` 'mine' is a folder that dlpipe did not write"
    ):
        dl.train(_frame(), "y", out="mine", **FAST)
    with pytest.raises(FileExistsError):  # the error is also the built-in one
        dl.train(_frame(), "y", out="mine", **FAST)


def test_python_api_overwrite_and_bundle_save(tmp_path):
    run = dl.train(_frame(), "y", out="runs/x", **FAST)
    with pytest.raises(
        OutputExistsError,
        match=r"^`out` 'runs/x' already exists \(a dlpipe run folder\); set `overwrite` to true to replace it",
    ):
        dl.train(_frame(), "y", out="runs/x", **FAST)
    dl.train(_frame(), "y", out="runs/x", overwrite=True, **FAST)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "keep.bin").write_bytes(b"\x00\x01")
    with pytest.raises(
        OutputExistsError, match=r"^`path` 'models' is a folder that dlpipe did not write"
    ):
        run.bundle.save("models")
    assert sorted(os.listdir(tmp_path / "models")) == ["keep.bin"]


def test_ensemble_out_is_protected_and_replaced_with_overwrite(tmp_path, capsys):
    _csv()
    assert main(["train", "data.csv", *TRAIN, "-o", "runs/a"]) == 0
    assert main(["train", "data.csv", *TRAIN, "--seed", "1", "-o", "runs/b"]) == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.csv").write_text("1")
    rc, err = _run(["ensemble", "runs/a/bundle", "runs/b/bundle", "-o", "mine"], capsys)
    assert rc == 2 and "`--out` 'mine' is a folder that dlpipe did not write" in _one_sentence(err)
    assert sorted(os.listdir(tmp_path / "mine")) == ["x.csv"]
    assert main(["ensemble", "runs/a/bundle", "runs/b/bundle", "-o", "ens"]) == 0
    rc, err = _run(["ensemble", "runs/a/bundle", "runs/b/bundle", "-o", "ens"], capsys)
    assert (
        rc == 2
        and "`--out` 'ens' already exists (a dlpipe ensemble folder); pass `--overwrite`"
        in _one_sentence(err)
    )
    assert main(["ensemble", "runs/a/bundle", "runs/b/bundle", "-o", "ens", "--overwrite"]) == 0
    assert read_marker(tmp_path / "ens")["kind"] == "ensemble"


def test_tune_out_is_protected_resumes_its_own_folder_and_overwrite_starts_afresh(tmp_path, capsys):
    _csv()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.csv").write_text("1")
    args = [
        "tune",
        "data.csv",
        "-t",
        "y",
        "--trials",
        "2",
        "--epochs",
        "2",
        "--no-retrain",
        "--no-report",
        "-q",
    ]
    rc, err = _run([*args, "-o", "mine"], capsys)
    assert rc == 2 and "`--out` 'mine' is a folder that dlpipe did not write" in _one_sentence(err)
    assert sorted(os.listdir(tmp_path / "mine")) == ["x.csv"]
    assert main([*args, "-o", "t"]) == 0
    assert main([*args[:4], "--trials", "3", *args[6:], "-o", "t"]) == 0  # resumes: one more trial
    assert len(pd.read_csv(tmp_path / "t" / "trials.csv")) == 3
    assert main([*args, "-o", "t", "--overwrite"]) == 0  # a new study
    assert len(pd.read_csv(tmp_path / "t" / "trials.csv")) == 2
    assert read_marker(tmp_path / "t")["kind"] == "tune"


def test_keras_save_never_replaces_a_foreign_folder(tmp_path):
    from dlpipe.keras import Sequential, layers

    m = Sequential([layers.Input(shape=(3,)), layers.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    (tmp_path / "model.keras").mkdir()
    (tmp_path / "model.keras" / "notes.md").write_text("mine")
    with pytest.raises(
        OutputExistsError, match=r"^`filepath` 'model.keras' is a folder that dlpipe did not write"
    ):
        m.save(
            "model.keras"
        )  # Keras's default overwrite=True still never replaces a foreign folder
    m.save("saved")
    m.save("saved")  # its own folder: replaced
    assert (tmp_path / "model.keras" / "notes.md").read_text() == "mine"


# ---------------------------------------------------------------------- item 2: concurrent writers
def test_a_writer_is_refused_while_another_holds_the_lock(tmp_path, capsys):
    _csv()
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with OutputLock(tmp_path / "runs" / "x"):
            held.set()
            done.wait(10)

    (tmp_path / "runs").mkdir()
    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait(10)
        rc, err = _run(["train", "data.csv", *TRAIN, "-o", "runs/x"], capsys)
    finally:
        done.set()
        t.join()
    assert rc == 2
    assert (
        f"`--out` 'runs/x' is being written by another thread of this process (pid {os.getpid()}); wait for it to finish"
        in _one_sentence(err)
    )
    assert (
        sorted(os.listdir(tmp_path / "runs")) == []
    )  # nothing of the refused run, and the lock file is gone


def _stop_once_it_holds(proc: subprocess.Popen[str], lock: Path) -> None:
    """SIGSTOP ``proc`` once it has locked ``lock`` and stamped its pid there.

    A stopped process still holds its flock, so the next process meets the lock however slowly it
    starts, and the holder needs no long run to outlast it. The caller sends SIGCONT.
    """
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == proc.pid:
                os.kill(proc.pid, signal.SIGSTOP)
                return
        except (OSError, ValueError):
            pass  # not created or not stamped yet
        time.sleep(0.01)


@pytest.mark.service
def test_two_trainings_of_one_folder_the_second_is_refused_naming_the_first(tmp_path):
    _csv(tmp_path / "data.csv")
    cmd = [
        sys.executable,
        "-m",
        "dlpipe",
        "train",
        "data.csv",
        "-t",
        "y",
        "--epochs",
        "20",  # it is stopped while it holds the folder, so it need not outlast the second run
        "--patience",
        "0",
        "--batch-size",
        "8",
        "--quiet",
        "--no-report",
        "-o",
        "runs/same",
    ]
    first = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _stop_once_it_holds(first, tmp_path / "runs" / ".same.lock")
        second = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second started: make it longer"
        assert second.returncode == 2, second.stderr
        assert second.stderr.strip() == (
            f"error: `--out` 'runs/same' is being written by another dlpipe process (process id {first.pid}); "
            "wait for it to finish, or pick another path."
        )
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert sorted(os.listdir(tmp_path / "runs")) == [
        "same"
    ]  # one partial only, now removed; the lock file too


@pytest.mark.service
def test_two_tune_workers_of_one_folder_the_second_is_refused_and_trials_are_exact(tmp_path):
    _csv(tmp_path / "data.csv")
    cmd = [
        sys.executable,
        "-m",
        "dlpipe",
        "tune",
        "data.csv",
        "-t",
        "y",
        "--trials",
        "4",
        "--epochs",
        "2",  # it is stopped while it holds the folder, so it need not outlast the second worker
        "--pruner",
        "none",
        "--no-retrain",
        "--no-report",
        "-q",
        "-o",
        "same",
    ]
    first = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _stop_once_it_holds(first, tmp_path / ".same.lock")
        second = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert first.poll() is None, (
            "the first worker ended before the second started: make it longer"
        )
        assert second.returncode == 2, second.stderr
        assert (
            f"error: `--out` 'same' is being written by another dlpipe process (process id {first.pid})"
            in second.stderr
        )
        assert "IntegrityError" not in second.stderr and "--storage" not in second.stderr
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=400)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    trials = pd.read_csv(tmp_path / "same" / "trials.csv")
    assert trials["state"].isin(["complete", "pruned"]).sum() == 4 and len(trials) == 4


def test_a_shared_study_worker_leaves_a_held_folder_to_its_holder(tmp_path):
    # the supported multi-worker mode (--storage): the folder's holder writes it, other workers only add trials
    from dlpipe.tuning import tune

    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with OutputLock(tmp_path / "t"):
            held.set()
            done.wait(60)

    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait(10)
        with pytest.warns(
            DlpipeWarning,
            match=rf"is being written by another worker of this study \(process id {os.getpid()}\); this worker adds trials to the shared study",
        ):
            r = tune(
                _frame(),
                "y",
                trials=2,
                epochs=2,
                storage=f"sqlite:///{tmp_path / 'shared.db'}",
                heartbeat=0,
                out=tmp_path / "t",
                progress="quiet",
                retrain=False,
                report=False,
            )
    finally:
        done.set()
        t.join()
    assert not (tmp_path / "t").exists()  # not written by this worker
    assert (
        r.summary["complete"] + r.summary["pruned"] == 2
        and r.summary["folder_written_by_another_worker"]
    )


def test_a_damaged_local_study_file_does_not_blame_storage(tmp_path, capsys):
    _csv()
    args = [
        "tune",
        "data.csv",
        "-t",
        "y",
        "--trials",
        "1",
        "--epochs",
        "2",
        "--no-retrain",
        "--no-report",
        "-q",
        "-o",
        "t",
    ]
    assert main(args) == 0
    (tmp_path / "t" / "study.db").write_bytes(b"this is not a database" * 100)
    rc, err = _run(args, capsys)
    assert rc == 2
    assert (
        "cannot open the study file" in _one_sentence(err)
        and "move it away to start a new study" in err
    )
    assert "--storage" not in err


# ---------------------------------------------------------------------- item 8: leftovers
@pytest.mark.service
def test_kill_9_during_the_run_folder_write_leaves_a_leftover_that_the_next_run_cleans(
    tmp_path, capsys
):
    _csv(tmp_path / "data.csv")
    code = (
        "import time\nfrom dlpipe.core.files import atomic_dir\n"
        "with atomic_dir('runs/x', kind='run') as tmp:\n"
        "    (tmp / 'metrics.json').write_text('{}')\n    print('writing', flush=True)\n    time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    left = [p for p in os.listdir(tmp_path / "runs") if p.startswith(".x.tmp-")]
    assert len(left) == 1 and (tmp_path / "runs" / ".x.lock").exists()
    (
        tmp_path / "runs" / ".x.tmp-0000beef"
    ).mkdir()  # same pattern, not dlpipe's (no marker, not empty): kept
    (tmp_path / "runs" / ".x.tmp-0000beef" / "user.txt").write_text("mine")
    rc, err = _run_warned(["train", "data.csv", *TRAIN, "-o", "runs/x"], capsys)
    assert rc == 0
    assert (
        f"warning: removed '{left[0]}' from 'runs': unfinished temporary folder(s) of an earlier write of 'x' that was killed "
        "(no live process held its lock).\n"
    ) in err
    assert sorted(os.listdir(tmp_path / "runs")) == [".x.tmp-0000beef", "x"]


class _Stop(Callback):
    """Raise ``exc`` at the end of epoch ``at``, recording whether a checkpoint existed then."""

    checkpoint_state = False

    def __init__(self, exc: BaseException, at: int, folder: Path) -> None:
        self.exc, self.at, self.folder, self.had_checkpoint = exc, at, folder, False

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.at:
            self.had_checkpoint = (self.folder / CHECKPOINT_FILE).is_file()
            raise self.exc


def test_a_failed_run_removes_its_checkpoint_so_a_plain_retry_is_not_blocked(tmp_path):
    stop = _Stop(
        RunFailedError("the training loss became nan at epoch 3; lower `learning_rate`."),
        3,
        tmp_path / "runs" / "x.partial",
    )
    with pytest.raises(RunFailedError, match="became nan"):
        dl.train(
            _frame(),
            "y",
            out="runs/x",
            checkpoint=True,
            callbacks=[stop],
            epochs=10,
            progress="quiet",
            report=False,
        )
    assert stop.had_checkpoint
    assert not (
        tmp_path / "runs"
    ).exists()  # no .partial, no lock file, and the runs/ it created is gone
    dl.train(_frame(), "y", out="runs/x", checkpoint=True, **FAST)  # the plain retry


def test_ctrl_c_keeps_the_checkpoint_for_resume_and_a_plain_retry_says_how_to_go_on(
    tmp_path, capsys
):
    _csv()
    stop = _Stop(KeyboardInterrupt(), 3, tmp_path / "runs" / "x.partial")
    with pytest.raises(KeyboardInterrupt):
        dl.train(
            "data.csv",
            "y",
            out="runs/x",
            checkpoint=True,
            callbacks=[stop],
            epochs=10,
            progress="quiet",
            report=False,
        )
    assert stop.had_checkpoint and (tmp_path / "runs" / "x.partial" / CHECKPOINT_FILE).is_file()
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "runs/x"], capsys)
    assert rc == 2
    assert (
        "an interrupted run left a checkpoint in 'runs/x.partial'; resume it by passing 'runs/x.partial' as `--resume`, "
        "or pass `--overwrite` to discard it and start afresh."
    ) in _one_sentence(err)
    rc, err = _run_warned(["train", "data.csv", *TRAIN, "-o", "runs/x", "--overwrite"], capsys)
    assert (
        rc == 0
        and "warning: discarded the checkpoint an interrupted run left in 'runs/x.partial' (`--overwrite` is set).\n"
        in err
    )
    assert sorted(os.listdir(tmp_path / "runs")) == ["x"]


def test_a_checkpoint_folder_without_a_checkpoint_is_cleaned_with_a_warning(tmp_path):
    # what a run killed before its first checkpoint (or the old code's failed run) left: x.partial/meta.json
    (tmp_path / "runs" / "x.partial").mkdir(parents=True)
    (tmp_path / "runs" / "x.partial" / "meta.json").write_text(
        '{"fingerprint": {}, "out": "runs/x"}'
    )
    with pytest.warns(
        DlpipeWarning,
        match=r"removed 'runs/x.partial', left by a run that was killed before its first checkpoint",
    ):
        dl.train(_frame(), "y", out="runs/x", checkpoint=True, **FAST)
    assert sorted(os.listdir(tmp_path / "runs")) == ["x"]


def test_a_foreign_folder_at_the_checkpoint_path_is_never_deleted(tmp_path):
    (tmp_path / "runs" / "x.partial").mkdir(parents=True)
    (tmp_path / "runs" / "x.partial" / "mine.txt").write_text("keep")
    with pytest.raises(
        OutputExistsError,
        match=r"keeps its checkpoints in 'runs/x.partial', which exists but was not written by dlpipe",
    ):
        dl.train(_frame(), "y", out="runs/x", checkpoint=True, **FAST)
    assert (tmp_path / "runs" / "x.partial" / "mine.txt").read_text() == "keep"
    assert sorted(os.listdir(tmp_path / "runs")) == ["x.partial"]


@pytest.mark.service
def test_kill_9_during_training_keeps_the_checkpoint_and_a_retry_is_told_to_resume(
    tmp_path, capsys
):
    _csv(tmp_path / "data.csv")
    cmd = [
        sys.executable,
        "-m",
        "dlpipe",
        "train",
        "data.csv",
        "-t",
        "y",
        "--epochs",
        "1000",  # long enough to hold the folder while the second run starts and is refused (~8 s)
        "--patience",
        "0",
        "--batch-size",
        "8",
        "--quiet",
        "--no-report",
        "-o",
        "runs/x",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (
        not (tmp_path / "runs" / "x.partial" / CHECKPOINT_FILE).is_file()
        and time.monotonic() < deadline
        and proc.poll() is None
    ):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert (tmp_path / "runs" / "x.partial" / CHECKPOINT_FILE).is_file()
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "runs/x"], capsys)
    assert (
        rc == 2
        and "an interrupted run left a checkpoint in 'runs/x.partial'; resume it by passing 'runs/x.partial' as `--resume`"
        in err
    )
    assert "being written" not in err  # the kernel released the dead process's lock


# ---------------------------------------------------------------------- item 7: sentences instead of raw exceptions
def _interrupted(tmp_path: Path) -> Path:
    _csv()
    stop = _Stop(KeyboardInterrupt(), 3, tmp_path / "runs" / "x.partial")
    with pytest.raises(KeyboardInterrupt):
        dl.train(
            "data.csv",
            "y",
            out="runs/x",
            checkpoint=True,
            callbacks=[stop],
            epochs=10,
            progress="quiet",
            report=False,
        )
    return tmp_path / "runs" / "x.partial"


def test_a_truncated_checkpoint_on_resume_is_one_sentence_and_is_kept(tmp_path, capsys):
    partial = _interrupted(tmp_path)
    blob = (partial / CHECKPOINT_FILE).read_bytes()
    (partial / CHECKPOINT_FILE).write_bytes(blob[: len(blob) // 2])
    before = _snapshot(partial)
    rc, err = _run(["train", "data.csv", *TRAIN, "--resume", "runs/x.partial"], capsys)
    assert rc == 2
    assert (
        "the checkpoint 'runs/x.partial/checkpoint.safetensors' is truncated or damaged ("
        in _one_sentence(err)
    )
    assert "so the run cannot be resumed from it; start the run again without `--resume`" in err
    assert _snapshot(partial) == before


def test_a_damaged_checkpoint_meta_on_resume_is_one_sentence(tmp_path, capsys):
    partial = _interrupted(tmp_path)
    (partial / "meta.json").write_text("{not json")
    rc, err = _run(["train", "data.csv", *TRAIN, "--resume", "runs/x.partial"], capsys)
    assert rc == 2 and "the checkpoint's 'runs/x.partial/meta.json' is damaged (" in _one_sentence(
        err
    )
    with pytest.raises(InvalidInputError):
        dl.train("data.csv", "y", resume="runs/x.partial", **FAST)


def test_resume_of_a_tampered_checkpoint_state_is_one_sentence(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    partial = _interrupted(tmp_path)
    with safe_open(str(partial / CHECKPOINT_FILE), framework="pt") as fh:
        state = json.loads(fh.metadata()["state"])
    del state["optimizer"]  # same run (fingerprint), but a key the restore needs is gone
    tensors = load_file(str(partial / CHECKPOINT_FILE))
    save_file(tensors, str(partial / CHECKPOINT_FILE), metadata={"state": json.dumps(state)})
    with pytest.raises(
        InvalidInputError,
        match=r"^the checkpoint 'runs/x.partial/checkpoint.safetensors' is truncated or damaged \('optimizer'\)",
    ):
        dl.train(
            "data.csv", "y", resume="runs/x.partial", epochs=10, progress="quiet", report=False
        )
    assert (partial / CHECKPOINT_FILE).is_file()  # kept: not ours to judge


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    _csv()
    assert main(["train", "data.csv", *TRAIN, "-o", "runs/m"]) == 0
    return tmp_path / "runs" / "m" / "bundle"


def test_predict_into_an_existing_folder_is_refused_and_leaves_no_temporary_file(
    tmp_path, capsys, bundle
):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.csv").write_text("keep")
    before = sorted(os.listdir(tmp_path))
    rc, err = _run(["predict", str(bundle), "data.csv", "-o", "out"], capsys)
    assert rc == 2
    assert (
        "`--output` 'out' is a folder; pass a file name, such as 'out/predictions.csv'."
        in _one_sentence(err)
    )
    assert sorted(os.listdir(tmp_path)) == before and sorted(os.listdir(tmp_path / "out")) == [
        "old.csv"
    ]
    assert main(["predict", str(bundle), "data.csv", "-o", "out/p.csv"]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["old.csv", "p.csv"]


@pytest.mark.parametrize("cmd", ["predict", "evaluate"])
def test_outputs_into_a_missing_folder_or_under_a_file_are_one_sentence(
    tmp_path, capsys, bundle, cmd
):
    rc, err = _run([cmd, str(bundle), "data.csv", "-o", "missing/p.csv"], capsys)
    assert rc == 2
    assert (
        "cannot write `--output` 'missing/p.csv': its folder 'missing' does not exist (No such file or directory (ENOENT)); "
        "create the folder first or pick another path."
    ) in _one_sentence(err)
    rc, err = _run([cmd, str(bundle), "data.csv", "-o", "data.csv/p.csv"], capsys)
    assert rc == 2
    assert (
        "cannot write `--output` 'data.csv/p.csv': 'data.csv' is a file, not a folder (Not a directory (ENOTDIR))"
        in _one_sentence(err)
    )
    assert not (tmp_path / "missing").exists()


def test_train_out_under_a_file_is_one_sentence(tmp_path, capsys):
    # root ignores a chmod'd read-only folder, so "cannot write" is a path under a regular file (ENOTDIR)
    _csv()
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "data.csv/run"], capsys)
    assert rc == 2
    assert (
        "cannot write `--out` 'data.csv/run': 'data.csv' is a file, not a folder (Not a directory (ENOTDIR)); pick a location inside a folder."
        in _one_sentence(err)
    )
    rc, err = _run(["train", "data.csv", *TRAIN, "--runs-dir", "data.csv/runs"], capsys)
    assert (
        rc == 2
        and "cannot write `--runs-dir` 'data.csv/runs/run': 'data.csv' is a file, not a folder"
        in _one_sentence(err)
    )
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]


@pytest.mark.skipif(
    not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys, which is read-only even for root"
)
def test_train_out_on_a_read_only_filesystem_is_one_sentence(tmp_path, capsys):
    _csv()
    rc, err = _run(["train", "data.csv", *TRAIN, "-o", "/sys/dlpipe-run"], capsys)
    assert rc == 2
    assert "cannot write `--out` '/sys/dlpipe-run': " in _one_sentence(err) and (
        "(EACCES)" in err or "(EPERM)" in err or "(EROFS)" in err
    )


def test_lock_and_checks_in_isolation(tmp_path):
    # the building blocks, without training: a busy lock names the holder; re-entry in one thread is allowed
    with OutputLock(tmp_path / "x") as outer:
        with OutputLock(tmp_path / "x"):
            assert outer.held
        holder: list[BaseException] = []
        t = threading.Thread(target=lambda: _try_lock(tmp_path / "x", holder))
        t.start()
        t.join()
        assert isinstance(holder[0], OutputBusyError)
    assert not (tmp_path / ".x.lock").exists()
    with (
        pytest.raises(OutputPathError, match="names the current folder"),
        atomic_dir(tmp_path / ".."),
    ):
        pass


def _try_lock(path: Path, out: list[BaseException]) -> None:
    try:
        with OutputLock(path):
            pass
    except OutputBusyError as exc:
        out.append(exc)


def test_single_file_writers_never_touch_a_users_dot_tmp_file(tmp_path: Path) -> None:
    """The image grid, drift page, exports, GIFs and diagrams write to a private temporary name
    (``core.files.private_tmp``), not a fixed ``.<name>.tmp`` a user's file (or a second writer) may hold."""
    from dlpipe.core.files import private_tmp
    from dlpipe.pipeline.generative import save_image_grid

    users = tmp_path / ".grid.png.tmp"
    users.write_text("the user's notes", encoding="utf-8")
    save_image_grid(np.random.default_rng(0).random((4, 1, 8, 8)), tmp_path / "grid.png")
    assert users.read_text(encoding="utf-8") == "the user's notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".grid.png.tmp", "grid.png"]
    a, b = private_tmp(tmp_path / "x.onnx"), private_tmp(tmp_path / "x.onnx")
    assert a != b and a.parent == tmp_path and a.name.startswith(".x.onnx.tmp-")
