"""The shape of the one run path (issue #16), checked on the source: every `auto` training setting is
resolved in pipeline/settings.py, a run's Trainer is built from its config in one function, and the
package has one epoch loop (the engine's; RL's environment loops count steps and episodes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlpipe.core.config import build_config
from dlpipe.pipeline.recipe import Recipe
from dlpipe.pipeline.settings import resolve_settings

SRC = Path(__file__).resolve().parents[2] / "src" / "dlpipe"


def _sources() -> dict[str, str]:
    return {str(p.relative_to(SRC)): p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}


def test_auto_training_settings_are_resolved_in_one_place():
    # `tc.epochs != "auto"`, `learning_rate == "auto"`, `s.lookback if s.lookback != "auto"`...
    pattern = re.compile(r'(epochs|batch_size|learning_rate|lookback)\b[^\n]{0,30}?[!=]=\s*"auto"')
    found = {
        (name, m.group(0)) for name, text in _sources().items() for m in pattern.finditer(text)
    }
    assert {name for name, _ in found} <= {"pipeline/settings.py"}, sorted(found)


def test_a_runs_trainer_is_built_from_its_config_in_one_function():
    call = re.compile(r"(?<![A-Za-z_.])Trainer\(")
    where = {
        name
        for name, text in _sources().items()
        if call.search(text) and (name.startswith(("pipeline/", "tuning/")))
    }
    # recipe.py: trainer_from_config; _fit_generative.py: GANTrainer, the public two-network convenience class
    # (dl.train's GAN runs go through the recipe like every other kind)
    assert where <= {"pipeline/recipe.py", "pipeline/_fit_generative.py"}, where


def test_one_epoch_loop_in_the_package():
    loop = re.compile(r"for \w+ in range\([^\n]*epoch")
    # PPO's passes over one rollout (rl/ppo.py, n_epochs) are the algorithm's update, not a loop
    # that trains a model on a data set
    where = {
        name
        for name, text in _sources().items()
        if loop.search(text) and not name.startswith("rl/")
    }
    assert where == {"training/trainer.py"}, where


class _Plain(Recipe):
    kind = "plain"


class _Gan(Recipe):
    kind = "gan"
    auto_learning_rate = 2e-4
    default_learning_rate = 2e-4

    def auto_batch_size(self, n_train: int) -> int:
        return 64


@pytest.mark.parametrize(
    "given,recipe,expected",
    [
        ({}, _Plain(), (1e-3, False)),  # the config's default rate
        (
            {"learning_rate": "auto"},
            _Plain(),
            (1e-3, True),
        ),  # the range test for every kind with one loss
        ({"learning_rate": 3e-3}, _Plain(), (3e-3, False)),
        ({}, _Gan(), (2e-4, False)),  # a kind's own default when none was given
        (
            {"learning_rate": 1e-3},
            _Gan(),
            (1e-3, False),
        ),  # given, even if equal to the shared default
        ({"learning_rate": "auto"}, _Gan(), (2e-4, False)),  # no range test without a single loss
    ],
)
def test_learning_rate_means_one_thing_for_every_kind(given, recipe, expected):
    s = resolve_settings(build_config(given), recipe, 1000)
    assert (s.learning_rate, s.find_learning_rate) == expected


def test_auto_batch_and_epochs_come_from_the_recipe_rules():
    assert (
        resolve_settings(build_config({}), _Plain(), 1500).batch_size,
        resolve_settings(build_config({}), _Plain(), 1500).epochs,
    ) == (32, 86)
    assert resolve_settings(build_config({}), _Gan(), 1500).batch_size == 64
    s = resolve_settings(build_config({"epochs": 7, "batch_size": 5}), _Gan(), 1500)
    assert (s.epochs, s.batch_size) == (7, 5)
    assert (
        resolve_settings(build_config({}), _Plain(), 1500, overrides={"batch_size": 128}).batch_size
        == 128
    )  # a trial's sample
