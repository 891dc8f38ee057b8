"""Every script in examples/ runs on its small slice (`DLPIPE_EXAMPLE_QUICK=1`) and prints what it should.

The scripts run in this process with `runpy` (a subprocess would pay the ~2-8 s import of torch,
sklearn and dlpipe again for each of them), in the test's temporary folder, with dlpipe's caches
there too. Each check reads the figure the script prints (or a file it writes) and holds it to a
floor that a broken example, facade or recipe would miss; the floors come from the quick runs'
own figures with a margin (the full runs' figures are in each script's docstring).
"""

from __future__ import annotations

import math
import re
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, SHARED_DATA

EXAMPLES = REPO / "examples"


def _run(name: str, monkeypatch, capsys, tmp_path: Path) -> str:
    monkeypatch.setenv("DLPIPE_EXAMPLE_QUICK", "1")
    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", [name])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def _figure(out: str, label: str) -> float:
    found = re.findall(rf"^{re.escape(label)}: (-?[\d.]+)", out, flags=re.MULTILINE)
    assert found, f"the script printed no line {label!r}:\n{out}"
    return float(found[-1])


def test_every_script_is_checked():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(CHECKS), (
        "a script in examples/ has no check here, or a check lost its script"
    )


def check_xor(out, folder):
    assert _figure(out, "accuracy") == 1.0  # the four rows of the truth table


def check_mlp(out, folder):
    assert _figure(out, "test accuracy") >= 0.6  # 0.675 on the quick slice; chance is 0.5
    assert (folder / "make_classification_mlp" / "manifest.json").is_file()  # a bundle


def check_mnist(out, folder):
    assert _figure(out, "test accuracy") >= 0.4  # 0.635 after one epoch on 2,000 images; chance 0.1


def check_image_folder(out, folder):
    assert _figure(out, "test accuracy") >= 0.6  # 0.82 on 2 x 55 images, 2 epochs; chance 0.5
    assert (folder / "image_folder_run" / "bundle" / "manifest.json").is_file()
    assert re.search(r"three_\d+\.png\s+(three|eight)\s", out)  # the bundle predicted new files


def check_imbalanced(out, folder):
    plain = _figure(out, "plain balanced accuracy")
    weighted = _figure(out, "class_weight balanced accuracy")
    assert weighted >= 0.6 and weighted > plain + 0.1  # quick: 0.37 plain vs 0.90 weighted


def check_regression(out, folder):
    mae = [float(v) for v in re.findall(r"test MAE ([\d.]+)", out)]
    linear = _figure(out, "linear regression test MAE")
    assert (
        len(mae) == 2 and max(mae) < 1.2 * linear
    )  # both networks near or below linear regression


def check_lstm(out, folder):
    forecast = pd.read_csv(folder / "lstm_forecast.csv")
    assert len(forecast) == 60 and forecast["lstm"].notna().all()  # the last 20% of 300 values
    rmse = _figure(out, "LSTM test RMSE")
    assert math.isfinite(rmse) and rmse < forecast["actual"].max() - forecast["actual"].min()


def check_autoencoder(out, folder):
    assert _figure(out, "autoencoder ROC-AUC") >= 0.8  # 0.91 after 20 epochs


def check_vae(out, folder):
    assert (folder / "vae_samples.png").is_file()
    model = _figure(out, "nearest-training-image distance of the samples")
    assert model < _figure(out, "... of independent per-pixel noise")  # 1.56 vs 1.99


def check_gan(out, folder):
    assert (folder / "gan_samples.png").is_file()
    history = pd.read_csv(folder / "gan_run" / "history.csv")
    assert len(history) == 2 and history["d_loss"].between(0, 10).all()


def check_qlearning(out, folder):
    # value iteration plans the optimal policy: 0.67 of 100 fresh episodes reach the goal
    assert _figure(out, "value iteration success rate") >= 0.5
    assert _figure(out, "Q-learning success rate") > _figure(out, "random policy success rate")
    assert (folder / "qlearning_run" / "bundle").is_dir()


def check_dqn(out, folder):
    assert (folder / "dqn_run" / "bundle").is_dir()
    assert _figure(out, "one episode with the loaded agent, return") >= 8  # CartPole's shortest
    assert math.isfinite(_figure(out, "DQN mean return"))


CHECKS = {
    "01_xor.py": check_xor,
    "02_make_classification_mlp.py": check_mlp,
    "03_mnist_cnn.py": check_mnist,
    "04_image_folder_binary.py": check_image_folder,
    "05_imbalanced_six_classes.py": check_imbalanced,
    "06_regression_l2.py": check_regression,
    "07_stock_lstm.py": check_lstm,
    "08_autoencoder_anomalies.py": check_autoencoder,
    "09_vae.py": check_vae,
    "10_gan.py": check_gan,
    "11_qlearning.py": check_qlearning,
    "12_dqn.py": check_dqn,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_runs_on_its_quick_slice(name, monkeypatch, capsys, tmp_path):
    if name == "03_mnist_cnn.py" and not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(
            f"the MNIST IDX files are not at {SHARED_DATA / 'mnist'} (the project's shared data)"
        )
    out = _run(name, monkeypatch, capsys, tmp_path)
    CHECKS[name](out, tmp_path / "examples-output")
