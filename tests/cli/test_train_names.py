"""Issue #16 item 6: one name per idea between config keys, `dlpipe train` flags and `dl.train` (defaults, errors, types)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.cli.app import train as cli_train
from dlpipe.core.errors import InvalidConfigError
from dlpipe.training.callbacks import Callback

# A config key whose flag has another name, and why.
_FLAG_NAMES = {
    "family": "model",
    "learning_rate": "lr",
}  # --model is the family; --lr (also --learning-rate)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] > 0).astype(int)}).to_csv(
        tmp_path / "t.csv", index=False
    )
    return Path("t.csv")


def test_every_config_key_has_a_train_flag():
    from dlpipe.core.config import _SECTIONS, _TOP

    params = set(inspect.signature(cli_train).parameters)
    keys = [k for cls in _SECTIONS.values() for k in cls.model_fields] + list(_TOP)
    assert sorted(k for k in set(keys) if _FLAG_NAMES.get(k, k) not in params) == []


def test_new_flags_reach_config_yaml(table, capsys):
    argv = [
        "train",
        str(table),
        "--target",
        "y",
        "--epochs",
        "1",
        "--out",
        "r",
        "-q",
        "--no-report",
        "--no-restore-best",
        "--min-delta",
        "0.01",
        "--drop",
        "b",
        "--max-onehot",
        "5",
        "--threads",
        "1",
        "--name",
        "named",
        "--loss",
        "auto",
    ]
    assert main(argv) == 0
    cfg = yaml.safe_load(Path("r/config.yaml").read_text(encoding="utf-8"))
    assert (
        cfg["train"]["restore_best"] is False
        and cfg["train"]["min_delta"] == 0.01
        and cfg["train"]["threads"] == 1
    )
    assert (
        cfg["data"]["drop"] == ["b"] and cfg["data"]["max_onehot"] == 5 and cfg["name"] == "named"
    )


def test_bad_list_flag_is_one_sentence(table, capsys):
    assert main(["train", str(table), "--target", "y", "--mean", "0.5,x"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: `--mean` is '0.5,x' but must be comma-separated numbers such as 0.5,0.5,0.5."
    )


def test_restore_best_weights_is_refused_with_the_one_name(table):
    with pytest.raises(
        InvalidConfigError,
        match=r"unknown config key `restore_best_weights` \(did you mean `restore_best`\?\)",
    ):
        dl.train(str(table), "y", restore_best_weights=False, save=False)


def test_checkpoint_defaults_agree_between_cli_and_python():
    cli_default = inspect.signature(cli_train).parameters["checkpoint"].default
    assert cli_default is True
    assert inspect.signature(dl.train).parameters["checkpoint"].default is cli_default


class _Interrupt(Callback):
    """Stops the run after its second epoch, as Ctrl-C would."""

    checkpoint_state = False  # not part of the run: resuming without it is allowed

    def on_epoch_end(self, trainer, epoch, logs):  # noqa: ANN001
        if epoch >= 2:
            raise KeyboardInterrupt


def test_python_run_interrupted_leaves_a_checkpoint_to_resume(table):
    with pytest.raises(KeyboardInterrupt):
        dl.train(str(table), "y", epochs=5, out="run", progress="quiet", callbacks=[_Interrupt()])
    assert Path("run.partial").is_dir() and not Path("run").exists()
    run = dl.train(str(table), "y", epochs=5, progress="quiet", resume="run.partial", report=False)
    assert run.path == Path("run") and len(run.history) == 5 and not Path("run.partial").exists()


def test_no_checkpoint_folder_when_nothing_is_saved(table):
    dl.train(str(table), "y", epochs=1, progress="quiet", save=False)
    assert sorted(p.name for p in Path(".").iterdir()) == ["t.csv"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"freeze_backbone": True},
            "`freeze_backbone` needs `pretrained` weights (a frozen random backbone learns nothing); "
            "set `pretrained` to a weight file.",
        ),
        (
            {"finetune_epochs": 1},
            "`finetune_epochs` unfreezes a frozen backbone, so it needs `freeze_backbone`; set `freeze_backbone` to true.",
        ),
    ],
)
def test_image_errors_name_the_config_key_not_a_flag(options, message):
    from dlpipe.data.images import ImageDataset

    x = np.zeros((8, 1, 8, 8), np.uint8)
    with pytest.raises(InvalidConfigError) as info:
        dl.train(
            ImageDataset(x, np.arange(8) % 2), epochs=1, save=False, progress="quiet", **options
        )
    assert str(info.value) == message and "--" not in str(info.value)


def test_train_returns_a_typed_run():
    assert inspect.signature(dl.train).return_annotation in ("Run", dl.Run)
